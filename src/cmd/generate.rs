//! `gt completions SHELL` and `gt man`: shell completion scripts and man pages generated from
//! the clap definitions in cli.rs, so they can never drift from the real command line.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::CommandFactory;

use crate::exit::Code;

/// Arguments of `gt completions`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  gt completions bash > ~/.local/share/bash-completion/completions/gt\n  \
    gt completions zsh > \"${fpath[1]}/_gt\"\n  gt completions fish > ~/.config/fish/completions/gt.fish"
)]
pub struct CompletionsArgs {
    /// The shell to write a completion script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `gt man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write gt.1 and one page per subcommand (gt-hook.1, gt-hook-pre-receive.1, ...) into this
    /// directory instead of printing gt.1 on stdout.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Print the completion script for one shell on stdout.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<Code> {
    let mut cmd = crate::cli::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "gt", &mut out);
    std::io::stdout()
        .write_all(&out)
        .context("writing the completion script to stdout")?;
    Ok(Code::Ok)
}

/// Print gt.1 on stdout, or write every page into `--out-dir`.
pub fn man(args: ManArgs) -> anyhow::Result<Code> {
    let cmd = crate::cli::Cli::command();
    match args.out_dir {
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .context("rendering the man page")?;
            std::io::stdout()
                .write_all(&out)
                .context("writing the man page to stdout")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cmd, &dir)
                .with_context(|| format!("writing man pages into {}", dir.display()))?;
        }
    }
    Ok(Code::Ok)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use clap::ValueEnum;

    #[test]
    fn every_shell_gets_a_script_naming_the_subcommands() {
        for shell in clap_complete::Shell::value_variants() {
            let mut cmd = crate::cli::Cli::command();
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "gt", &mut out);
            let text = String::from_utf8(out).unwrap();
            for sub in ["pull", "hook", "pre-receive", "completions"] {
                assert!(text.contains(sub), "{shell}: no {sub} in the script");
            }
        }
    }

    #[test]
    fn man_pages_cover_every_subcommand() {
        let mut out = Vec::new();
        clap_mangen::Man::new(crate::cli::Cli::command())
            .render(&mut out)
            .unwrap();
        let page = String::from_utf8(out).unwrap();
        assert!(page.starts_with(".ie") || page.contains(".TH gt"), "{page}");
        assert!(page.contains("pull"));
        let dir = tempfile::tempdir().unwrap();
        clap_mangen::generate_to(crate::cli::Cli::command(), dir.path()).unwrap();
        for page in ["gt.1", "gt-pull.1", "gt-hook.1", "gt-hook-pre-receive.1"] {
            let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
            assert!(text.contains(".TH"), "{page}");
        }
    }
}
