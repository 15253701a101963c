//! `gt keynote keygen`: generate an RFC 2792 RSA or DSA key pair and write the public and
//! private key strings as the reference `keynote keygen` does.
//!
//! Usage: `keygen <AlgorithmName> <keysize> <PublicKeyFile> <PrivateKeyFile> [<print-offset>]
//! [<print-length>]`; `-` as a file name means standard output. Key sizes: RSA 512 to 4096
//! bits (public exponent 65537); DSA 1024, 2048 or 3072 bits (the sizes the `dsa` crate
//! generates; the reference, through OpenSSL, accepts any size).

use super::sign::{PRINT_LENGTH, PRINT_OFFSET, c_atoi, fix_algorithm_name, print_param, strerror};
use keynote::crypto::{KeyAlgorithm, PRIVATE_KEY_PREFIX, PrivateKey, key_prefix, print_key};
use std::io::Write;

const USAGE: &str = "Arguments:\n\t<AlgorithmName> <keysize> <PublicKeyFile> <PrivateKeyFile> [<print-offset>] [<print-length>]\n";

/// Write `text` to `path`, or to `out` for "-"; `perror` style message on failure.
fn write_key(path: &str, text: &str, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), ()> {
    let result = if path == "-" {
        out.write_all(text.as_bytes())
    } else {
        std::fs::write(path, text)
    };
    result.map_err(|e| {
        let _ = writeln!(err, "{path}: {}", strerror(&e));
    })
}

/// Run `keynote keygen` with the arguments after the subcommand name; returns the exit status.
pub fn run(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let [alg_arg, size_arg, public_path, private_path, rest @ ..] = args else {
        let _ = err.write_all(USAGE.as_bytes());
        return 0;
    };
    if rest.len() > 2 {
        let _ = err.write_all(USAGE.as_bytes());
        return 0;
    }
    let algname = fix_algorithm_name(alg_arg, err);
    let mut offset = PRINT_OFFSET;
    let mut length = PRINT_LENGTH;
    if let Some(arg) = rest.first() {
        match print_param(arg, 0, "print-offset", err) {
            Ok(v) => offset = v,
            Err(()) => return 1,
        }
    }
    if let Some(arg) = rest.get(1) {
        match print_param(arg, 1, "print-length", err) {
            Ok(v) => length = v,
            Err(()) => return 1,
        }
    }
    if algname.len() + 2 > length {
        let _ = writeln!(
            err,
            "Parameter ``print-length'' should be larger than the length of AlgorithmName ({})",
            algname.len()
        );
        return 1;
    }
    let algorithm = key_prefix(&algname);
    let bits = c_atoi(size_arg);
    if bits <= 0 {
        let _ = writeln!(err, "Invalid specified keysize {bits}");
        return 1;
    }
    let (kind, encoding) = match algorithm {
        Some((kind @ (KeyAlgorithm::Rsa | KeyAlgorithm::Dsa), encoding, _)) => (kind, encoding),
        _ => {
            let _ = writeln!(err, "Unknown/unsupported algorithm [{algname}]");
            return 1;
        }
    };
    let key = match usize::try_from(bits).map_err(|_| ()).and_then(|bits| {
        PrivateKey::generate(kind, bits).map_err(|e| {
            let _ = writeln!(err, "{e}");
        })
    }) {
        Ok(key) => key,
        Err(()) => return 1,
    };
    let Some(public_der) = key.public_key().to_der() else {
        let _ = writeln!(err, "Error encoding key");
        return 1;
    };
    let public = print_key(&algname, &encoding.encode(&public_der), offset, length);
    if write_key(public_path, &public, out, err).is_err() {
        return 1;
    }
    let private_der = match key.to_der() {
        Ok(der) => der,
        Err(e) => {
            let _ = writeln!(err, "Error encoding key ({e})");
            return 1;
        }
    };
    if private_path == "-" && public_path == "-" {
        let _ = out.write_all(b"===========================\n");
    }
    let private = print_key(
        &format!("{PRIVATE_KEY_PREFIX}{algname}"),
        &encoding.encode(&private_der),
        offset,
        length,
    );
    if write_key(private_path, &private, out, err).is_err() {
        return 1;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use keynote::crypto::{Principal, Registry, sign_assertion};

    fn run_args(args: &[&str]) -> (i32, String, String) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let rc = run(&args, &mut out, &mut err);
        (
            rc,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    /// The key string inside a printed key: strip quotes, continuations and indentation.
    fn unwrap_printed(printed: &str) -> String {
        let s = printed.trim();
        let s = s.strip_prefix('"').unwrap().strip_suffix('"').unwrap();
        s.split("\\\n").map(str::trim_start).collect()
    }

    #[test]
    fn reference_error_paths() {
        assert_eq!(
            run_args(&["rsa-hex:"]),
            (0, String::new(), USAGE.to_owned())
        );
        assert_eq!(
            run_args(&["rsa-hex:", "0", "-", "-"]),
            (1, String::new(), "Invalid specified keysize 0\n".to_owned())
        );
        assert_eq!(
            run_args(&["foo-hex:", "512", "-", "-"]),
            (
                1,
                String::new(),
                "Unknown/unsupported algorithm [foo-hex:]\n".to_owned()
            )
        );
        let (rc, _, err) = run_args(&["rsa-hex:", "512", "-", "-", "0", "9"]);
        assert_eq!(rc, 1);
        assert!(err.contains("should be larger than the length of AlgorithmName (8)"));
    }

    #[test]
    fn generated_rsa_keys_sign_and_verify() {
        let (rc, out, err) = run_args(&["rsa-base64", "512", "-", "-"]);
        assert_eq!(rc, 0, "{err}");
        assert!(err.contains("should be terminated with a colon"));
        let (public, private) = out.split_once("===========================\n").unwrap();
        assert!(public.starts_with("            \"rsa-base64:"));
        assert!(private.starts_with("            \"private-rsa-base64:"));
        let public = unwrap_printed(public);
        let private = unwrap_printed(private);
        let body = format!("Authorizer: \"{public}\"\n");
        let sig = sign_assertion("sig-rsa-sha1-base64:", &private, body.as_bytes()).unwrap();
        Registry::default()
            .verify_assertion(&Principal::parse(&public).unwrap(), body.as_bytes(), &sig)
            .unwrap();
    }

    #[test]
    fn keys_go_to_files() {
        let dir = tempfile::tempdir().unwrap();
        let public = dir.path().join("k.pub");
        let private = dir.path().join("k.priv");
        let (rc, out, err) = run_args(&[
            "RSA-HEX:",
            "512",
            public.to_str().unwrap(),
            private.to_str().unwrap(),
            "0",
            "40",
        ]);
        assert_eq!((rc, out.as_str(), err.as_str()), (0, "", ""));
        let public = std::fs::read_to_string(public).unwrap();
        assert!(public.starts_with("\"RSA-HEX:"));
        assert!(public.lines().all(|l| l.len() <= 40));
        let private = unwrap_printed(&std::fs::read_to_string(private).unwrap());
        let key = PrivateKey::parse(&private).unwrap();
        assert_eq!(
            Principal::Key(key.public_key()),
            Principal::parse(&unwrap_printed(&public)).unwrap()
        );
    }

    #[test]
    fn unsupported_dsa_size_is_reported() {
        let (rc, out, err) = run_args(&["dsa-hex:", "512", "-", "-"]);
        assert_eq!((rc, out.as_str()), (1, ""));
        assert!(err.contains("unsupported DSA key size 512"), "{err}");
    }
}
