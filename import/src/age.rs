//! Decryption of age v1 files (<https://age-encryption.org/v1>) with a passphrase: the one key
//! mode an importer can use unattended (k8shark encrypts whole captures this way). The header's
//! `scrypt` stanza wraps the file key; the header MAC is checked before any payload is read;
//! the payload is ChaCha20-Poly1305 in 64 KiB chunks (age's STREAM), each authenticated, the
//! last one marked, so a truncated or altered file is refused rather than half-read.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The first line of every age v1 file.
pub const MAGIC: &[u8] = b"age-encryption.org/v1\n";

/// The highest scrypt work factor (log2 N) accepted: age's own default limit. A header asking
/// for more would make the importer spend minutes and gigabytes on one key derivation.
const MAX_LOG_N: u8 = 22;

const CHUNK: usize = 64 << 10;
const TAG: usize = 16;

/// Why a file could not be decrypted.
#[derive(Debug, PartialEq, Eq)]
pub struct AgeError {
    /// Byte offset in the file where the problem is, when it is about the file's bytes.
    pub byte: Option<u64>,
    /// What was wrong.
    pub message: String,
}

fn err(byte: Option<usize>, message: impl Into<String>) -> AgeError {
    AgeError {
        byte: byte.map(|b| b as u64),
        message: message.into(),
    }
}

/// True when `data` starts like an age file.
pub fn is_age(data: &[u8]) -> bool {
    data.starts_with(MAGIC)
}

/// Decrypts an age v1 file whose only recipient is a passphrase.
pub fn decrypt(data: &[u8], passphrase: &str) -> Result<Vec<u8>, AgeError> {
    if !is_age(data) {
        return Err(err(
            Some(0),
            "not an age file (no age-encryption.org/v1 header)",
        ));
    }
    // Header lines up to and including the MAC line `--- <mac>`.
    let mut pos = MAGIC.len();
    let mut stanzas: Vec<(Vec<String>, Vec<u8>)> = Vec::new();
    let (mac_start, mac) = loop {
        let end = data[pos..]
            .iter()
            .position(|b| *b == b'\n')
            .map(|i| pos + i)
            .ok_or_else(|| err(Some(pos), "the age header ends before its MAC line"))?;
        let line = std::str::from_utf8(&data[pos..end])
            .map_err(|_| err(Some(pos), "the age header is not text"))?;
        if let Some(rest) = line.strip_prefix("--- ") {
            let mac = STANDARD_NO_PAD
                .decode(rest)
                .map_err(|_| err(Some(pos), "the age header MAC is not base64"))?;
            break (pos, (mac, end + 1));
        }
        let Some(args) = line.strip_prefix("-> ") else {
            return Err(err(
                Some(pos),
                format!("unexpected age header line '{line}'"),
            ));
        };
        let args: Vec<String> = args.split(' ').map(str::to_string).collect();
        // The stanza body: base64 lines of 64 columns, the last one shorter (maybe empty).
        pos = end + 1;
        let mut body_b64 = String::new();
        loop {
            let end = data[pos..]
                .iter()
                .position(|b| *b == b'\n')
                .map(|i| pos + i)
                .ok_or_else(|| err(Some(pos), "an age stanza body is not terminated"))?;
            let l = std::str::from_utf8(&data[pos..end])
                .map_err(|_| err(Some(pos), "an age stanza body is not text"))?;
            body_b64.push_str(l);
            pos = end + 1;
            if l.len() < 64 {
                break;
            }
        }
        let body = STANDARD_NO_PAD
            .decode(&body_b64)
            .map_err(|_| err(Some(pos), "an age stanza body is not base64"))?;
        stanzas.push((args, body));
    };
    let (mac, payload_start) = mac;
    let scrypt_stanza = stanzas
        .iter()
        .find(|(a, _)| a.first().is_some_and(|t| t == "scrypt"));
    let Some((args, body)) = scrypt_stanza else {
        let kinds: Vec<&str> = stanzas
            .iter()
            .filter_map(|(a, _)| a.first().map(String::as_str))
            .collect();
        return Err(err(
            None,
            format!(
                "encrypted to a key ({}), not a passphrase: decrypt it first (`age --decrypt -i KEY FILE`)",
                kinds.join(", ")
            ),
        ));
    };
    if stanzas.len() != 1 {
        return Err(err(
            None,
            "an age scrypt stanza must be the file's only recipient",
        ));
    }
    let (salt, log_n) = match args.as_slice() {
        [_, salt, n] => (
            STANDARD_NO_PAD
                .decode(salt)
                .map_err(|_| err(None, "the scrypt salt is not base64"))?,
            n.parse::<u8>()
                .map_err(|_| err(None, "the scrypt work factor is not a number"))?,
        ),
        _ => {
            return Err(err(
                None,
                "the scrypt stanza needs a salt and a work factor",
            ))
        }
    };
    if salt.len() != 16 || body.len() != 32 {
        return Err(err(
            None,
            "the scrypt stanza's salt or wrapped key has the wrong length",
        ));
    }
    if log_n == 0 || log_n > MAX_LOG_N {
        return Err(err(
            None,
            format!("the scrypt work factor 2^{log_n} is outside 2^1..2^{MAX_LOG_N}"),
        ));
    }
    let mut full_salt = b"age-encryption.org/v1/scrypt".to_vec();
    full_salt.extend_from_slice(&salt);
    let params = scrypt::Params::new(log_n, 8, 1, 32)
        .map_err(|e| err(None, format!("scrypt parameters: {e}")))?;
    let mut wrap_key = [0u8; 32];
    scrypt::scrypt(passphrase.as_bytes(), &full_salt, &params, &mut wrap_key)
        .map_err(|e| err(None, format!("scrypt: {e}")))?;
    let file_key = ChaCha20Poly1305::new(Key::from_slice(&wrap_key))
        .decrypt(Nonce::from_slice(&[0u8; 12]), body.as_slice())
        .map_err(|_| err(None, "wrong passphrase (the file key does not unwrap)"))?;
    // The header MAC covers everything up to and including `---`.
    let mut hmac_key = [0u8; 32];
    Hkdf::<Sha256>::new(None, &file_key)
        .expand(b"header", &mut hmac_key)
        .map_err(|_| err(None, "HKDF"))?;
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&hmac_key).map_err(|_| err(None, "HMAC"))?;
    m.update(&data[..mac_start + 3]);
    m.verify_slice(&mac).map_err(|_| {
        err(
            Some(mac_start),
            "the age header MAC does not match: the header was altered",
        )
    })?;
    // Payload: a 16-byte nonce, then the STREAM chunks.
    let nonce_end = payload_start + 16;
    if data.len() < nonce_end + TAG {
        return Err(err(Some(data.len()), "the age payload is truncated"));
    }
    let mut payload_key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&data[payload_start..nonce_end]), &file_key)
        .expand(b"payload", &mut payload_key)
        .map_err(|_| err(None, "HKDF"))?;
    let aead = ChaCha20Poly1305::new(Key::from_slice(&payload_key));
    let mut out = Vec::with_capacity(data.len() - nonce_end);
    let mut at = nonce_end;
    let mut counter: u64 = 0;
    loop {
        let rest = data.len() - at;
        let last = rest <= CHUNK + TAG;
        let take = rest.min(CHUNK + TAG);
        let mut nonce = [0u8; 12];
        nonce[3..11].copy_from_slice(&counter.to_be_bytes());
        nonce[11] = u8::from(last);
        let plain = aead
            .decrypt(Nonce::from_slice(&nonce), &data[at..at + take])
            .map_err(|_| {
                err(
                    Some(at),
                    if last {
                        "the age payload is truncated or altered (its last chunk does not authenticate)"
                    } else {
                        "the age payload is altered (a chunk does not authenticate)"
                    },
                )
            })?;
        if plain.is_empty() && (counter > 0 || !last) {
            return Err(err(Some(at), "an empty age payload chunk"));
        }
        out.extend_from_slice(&plain);
        at += take;
        counter += 1;
        if last {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_age_and_keys_it_cannot_use() {
        assert_eq!(decrypt(b"PK\x03\x04", "x").unwrap_err().byte, Some(0));
        let x25519 = b"age-encryption.org/v1\n-> X25519 abc\nAAAA\n--- AAAA\n";
        let e = decrypt(x25519, "x").unwrap_err();
        assert!(e.message.contains("X25519"), "{e:?}");
        let cut = b"age-encryption.org/v1\n-> scrypt c2FsdA 18\n";
        assert!(decrypt(cut, "x").is_err());
    }
}
