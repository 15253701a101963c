//! Progress bars for long git transfers: git's own `--progress` lines ("Receiving objects:  45%
//! (450/1000)") parsed from its stderr and drawn with indicatif when stderr is a terminal.

use std::io::Read;

/// Read a git child's stderr to the end. With `tty`, progress lines drive an indicatif bar per
/// phase; every other line is kept and returned (git's warnings and errors, for messages).
pub fn follow_git_progress(mut stderr: impl Read, tty: bool) -> String {
    let mut kept = String::new();
    let mut bar: Option<(String, indicatif::ProgressBar)> = None;
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match stderr.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&chunk[..n]);
        // git redraws a progress line with '\r' and ends it with '\n'.
        while let Some(pos) = pending.iter().position(|&b| b == b'\r' || b == b'\n') {
            let line: Vec<u8> = pending.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            handle_line(&text, tty, &mut bar, &mut kept);
        }
    }
    if !pending.is_empty() {
        let text = String::from_utf8_lossy(&pending).into_owned();
        handle_line(&text, tty, &mut bar, &mut kept);
    }
    if let Some((_, b)) = bar {
        b.finish_and_clear();
    }
    kept
}

fn handle_line(
    text: &str,
    tty: bool,
    bar: &mut Option<(String, indicatif::ProgressBar)>,
    kept: &mut String,
) {
    let text = text.trim_start_matches("remote: ");
    if text.trim().is_empty() {
        return;
    }
    match parse_progress(text) {
        Some((phase, done, total)) if tty => {
            let same = matches!(bar, Some((p, _)) if p == phase);
            if !same {
                if let Some((_, b)) = bar.take() {
                    b.finish_and_clear();
                }
                let b = indicatif::ProgressBar::new(total);
                b.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{msg:>20} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                b.set_message(phase.to_owned());
                *bar = Some((phase.to_owned(), b));
            }
            if let Some((_, b)) = bar {
                b.set_length(total);
                b.set_position(done);
            }
        }
        Some(_) => {}
        None => {
            if tty {
                eprintln!("{text}");
            }
            kept.push_str(text);
            kept.push('\n');
        }
    }
}

/// `"Receiving objects:  45% (450/1000), 1.20 MiB | 2.00 MiB/s"` -> ("Receiving objects", 450,
/// 1000). Lines without a `(done/total)` count are not progress.
fn parse_progress(line: &str) -> Option<(&str, u64, u64)> {
    let (phase, rest) = line.split_once(':')?;
    let open = rest.find('(')?;
    let close = rest[open..].find(')')? + open;
    let (done, total) = rest[open + 1..close].split_once('/')?;
    Some((
        phase.trim(),
        done.trim().parse().ok()?,
        total.trim().parse().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_git_progress_lines() {
        assert_eq!(
            parse_progress("Receiving objects:  45% (450/1000), 1.20 MiB | 2.00 MiB/s"),
            Some(("Receiving objects", 450, 1000))
        );
        assert_eq!(
            parse_progress("Resolving deltas: 100% (7/7), done."),
            Some(("Resolving deltas", 7, 7))
        );
        assert_eq!(
            parse_progress("warning: filtering not recognized by server"),
            None
        );
    }

    #[test]
    fn keeps_messages_and_drops_progress() {
        let input = b"remote: Counting objects: 50% (1/2)\rremote: Counting objects: 100% (2/2)\n\
            fatal: couldn't find remote ref refs/tags/x\n";
        let kept = follow_git_progress(&input[..], false);
        assert_eq!(kept, "fatal: couldn't find remote ref refs/tags/x\n");
    }
}
