//! `airssys key generate`, `airssys sign` and `airssys verify`: ed25519
//! signatures over a component's code and manifest
//! ([`airssys_contract::signature`]).
//!
//! Keys are files of 64 hex digits; a secret key file is created with mode
//! 0600 and never printed. Exit codes: 0 signed / verifies; 1 does not
//! verify (the message names what changed); 2 invalid input.

use std::path::{Path, PathBuf};

use airssys_contract::signature::{self, PublicKey, SecretKey, SignatureError};

/// `airssys key` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum KeyCommand {
    /// Create a key pair: FILE (the secret key, mode 0600) and FILE.pub.
    Generate(GenerateArgs),
}

/// Arguments of `airssys key generate`.
#[derive(Debug, clap::Args)]
pub(crate) struct GenerateArgs {
    /// Where to write the secret key; the public key goes to FILE.pub.
    #[arg(long, short, value_name = "FILE")]
    out: PathBuf,
}

/// Arguments of `airssys sign`.
#[derive(Debug, clap::Args)]
pub(crate) struct SignArgs {
    /// The component to sign.
    component: PathBuf,
    /// The secret key file (`airssys key generate`).
    #[arg(long, value_name = "KEY")]
    key: PathBuf,
    /// Where to write the signed component (default: COMPONENT itself).
    #[arg(long, short, value_name = "OUT.wasm")]
    out: Option<PathBuf>,
}

/// Arguments of `airssys verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// The component to verify.
    component: PathBuf,
    /// A trusted public key file (repeatable). Without one, the signature
    /// is checked against the key it names, which proves only that the
    /// component did not change since that key signed it.
    #[arg(long = "key", value_name = "KEY.pub")]
    keys: Vec<PathBuf>,
}

/// Runs `airssys key ...`.
pub(crate) fn key(command: KeyCommand) -> u8 {
    let KeyCommand::Generate(args) = command;
    match generate(&args.out) {
        Ok(public) => {
            println!(
                "wrote the secret key to {} (keep it private) and the public key {} to {}.pub",
                args.out.display(),
                public.fingerprint(),
                args.out.display()
            );
            0
        }
        Err(message) => {
            eprintln!("error: {message}");
            2
        }
    }
}

fn generate(out: &Path) -> Result<PublicKey, String> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| format!("no random source: {e}"))?;
    let key = SecretKey::from_seed(seed);
    let public_path = PathBuf::from(format!("{}.pub", out.display()));
    write_secret(out, &key.to_hex()).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    std::fs::write(&public_path, format!("{}\n", key.public_key()))
        .map_err(|e| format!("cannot write {}: {e}", public_path.display()))?;
    Ok(key.public_key())
}

/// Creates `path` (never overwriting) readable by its owner only.
fn write_secret(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}

/// Runs `airssys sign`.
pub(crate) fn sign(args: SignArgs) -> u8 {
    let result = (|| -> Result<String, String> {
        let key = read_key(&args.key, SecretKey::from_hex)?;
        let bytes = read_component(&args.component)?;
        let signed = signature::sign(&bytes, &key)
            .map_err(|e| format!("{}: {e}", args.component.display()))?;
        let out = args.out.as_ref().unwrap_or(&args.component);
        std::fs::write(out, signed).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        Ok(format!(
            "signed {} with key {}",
            out.display(),
            key.public_key().fingerprint()
        ))
    })();
    match result {
        Ok(line) => {
            println!("{line}");
            0
        }
        Err(message) => {
            eprintln!("error: {message}");
            2
        }
    }
}

/// Runs `airssys verify`.
pub(crate) fn verify(args: VerifyArgs) -> u8 {
    let inputs = (|| -> Result<(Vec<u8>, Vec<PublicKey>), String> {
        let keys = args
            .keys
            .iter()
            .map(|k| read_key(k, str::parse::<PublicKey>))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((read_component(&args.component)?, keys))
    })();
    let (bytes, mut keys) = match inputs {
        Ok(inputs) => inputs,
        Err(message) => {
            eprintln!("error: {message}");
            return 2;
        }
    };
    let shown = args.component.display();
    if keys.is_empty() {
        match signature::read(&bytes) {
            Ok(Some(sig)) => keys.push(sig.signer),
            Ok(None) => {}
            Err(SignatureError::Wasm(e)) => {
                eprintln!("error: {shown}: {e}");
                return 2;
            }
            Err(_) => {}
        }
    }
    match signature::verify(&bytes, &keys) {
        Ok(signer) => {
            let trust = if args.keys.is_empty() {
                " (no --key given: this shows only that it did not change since; pass the \
                 signer's public key to trust it)"
            } else {
                ""
            };
            println!(
                "{shown}: signed by key {}; its code and manifest are as signed{trust}",
                signer.fingerprint()
            );
            0
        }
        Err(SignatureError::Wasm(e)) => {
            eprintln!("error: {shown}: {e}");
            2
        }
        Err(e) => {
            eprintln!("error: {shown} does not verify: {e}");
            1
        }
    }
}

fn read_key<T>(
    path: &Path,
    parse: impl Fn(&str) -> Result<T, SignatureError>,
) -> Result<T, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read key {}: {e}", path.display()))?;
    // The text of a key is never shown, only where it came from.
    parse(&text).map_err(|_| {
        format!(
            "{} is not a key file (64 hex digits, as `airssys key generate` writes)",
            path.display()
        )
    })
}

fn read_component(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    super::inspect::check_is_component(&path.display().to_string(), &bytes)?;
    Ok(bytes)
}
