//! Reading what the page shows of a model from the start of its GGUF file: the name,
//! architecture, size label, quantisation and the shapes that set its memory needs.
//!
//! A GGUF file starts with `GGUF`, a version (2 or 3), the tensor count, the count of
//! key-value pairs, then the pairs (key: u64 length and bytes; value: u32 type and the value).
//! Only the first bytes of a file are read, so parsing stops quietly when they run out; the
//! values found until then are kept.

use std::collections::BTreeMap;

/// A metadata value the page uses (arrays and other types are skipped).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Uint(u64),
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

impl Value {
    fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Uint(v) => Some(*v),
            Value::Int(v) => u64::try_from(*v).ok(),
            _ => None,
        }
    }
}

/// The header of a GGUF file, as far as the bytes read reach.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Header {
    pub version: u32,
    pub tensors: u64,
    /// Key-value pairs the file declares.
    pub declared: u64,
    /// The scalar and string values read, by key.
    pub values: BTreeMap<String, Value>,
    /// False when the bytes ran out before the last pair.
    pub complete: bool,
}

/// Why bytes are not a GGUF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GgufError {
    /// Not `GGUF` at the start.
    NotGguf,
    /// A version this reader does not know.
    Version(u32),
    /// Fewer than the 24 bytes of the fixed header.
    TooShort,
    /// A length or a type no GGUF writer produces.
    Corrupt(String),
}

impl std::fmt::Display for GgufError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GgufError::NotGguf => write!(
                f,
                "this is not a GGUF model file (it does not start with GGUF)"
            ),
            GgufError::Version(v) => write!(f, "GGUF version {v} is not supported (2 and 3 are)"),
            GgufError::TooShort => write!(f, "the file is too short to be a GGUF model"),
            GgufError::Corrupt(why) => write!(f, "the GGUF header is damaged: {why}"),
        }
    }
}

impl std::error::Error for GgufError {}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// The bytes ran out.
struct End;

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], End> {
        let n = usize::try_from(n).map_err(|_| End)?;
        let end = self.at.checked_add(n).ok_or(End)?;
        let slice = self.bytes.get(self.at..end).ok_or(End)?;
        self.at = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], End> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N as u64)?);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, End> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, End> {
        self.array().map(u64::from_le_bytes)
    }

    fn string(&mut self) -> Result<Result<String, GgufError>, End> {
        let len = self.u64()?;
        if len > 1 << 30 {
            return Ok(Err(GgufError::Corrupt(format!("a string of {len} bytes"))));
        }
        Ok(Ok(String::from_utf8_lossy(self.take(len)?).into_owned()))
    }
}

/// Bytes of one element of a fixed-size type, `None` for strings and arrays.
fn fixed_size(kind: u32) -> Option<u64> {
    match kind {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

/// Reads one value of type `kind`; `None` for a skipped array.
fn value(c: &mut Cursor, kind: u32) -> Result<Result<Option<Value>, GgufError>, End> {
    let v = match kind {
        0 => Value::Uint(c.array::<1>()?[0].into()),
        1 => Value::Int(i8::from_le_bytes(c.array()?).into()),
        2 => Value::Uint(u16::from_le_bytes(c.array()?).into()),
        3 => Value::Int(i16::from_le_bytes(c.array()?).into()),
        4 => Value::Uint(c.u32()?.into()),
        5 => Value::Int(i32::from_le_bytes(c.array()?).into()),
        6 => Value::Float(f32::from_le_bytes(c.array()?).into()),
        7 => Value::Bool(c.array::<1>()?[0] != 0),
        8 => match c.string()? {
            Ok(s) => Value::Str(s),
            Err(e) => return Ok(Err(e)),
        },
        9 => {
            let item = c.u32()?;
            let count = c.u64()?;
            match fixed_size(item) {
                Some(size) => {
                    let total = count.checked_mul(size).ok_or(End)?;
                    c.take(total)?;
                }
                None if item == 8 => {
                    for _ in 0..count {
                        let len = c.u64()?;
                        c.take(len)?;
                    }
                }
                None => return Ok(Err(GgufError::Corrupt(format!("an array of type {item}")))),
            }
            return Ok(Ok(None));
        }
        10 => Value::Uint(c.u64()?),
        11 => Value::Int(i64::from_le_bytes(c.array()?)),
        12 => Value::Float(f64::from_le_bytes(c.array()?)),
        other => return Ok(Err(GgufError::Corrupt(format!("a value of type {other}")))),
    };
    Ok(Ok(Some(v)))
}

/// Parses the header from the first bytes of a GGUF file.
pub fn parse(bytes: &[u8]) -> Result<Header, GgufError> {
    if bytes.len() >= 4 && &bytes[..4] != b"GGUF" {
        return Err(GgufError::NotGguf);
    }
    let mut c = Cursor { bytes, at: 4 };
    let fixed = (|| Ok::<_, End>((c.u32()?, c.u64()?, c.u64()?)))();
    let Ok((version, tensors, declared)) = fixed else {
        return Err(GgufError::TooShort);
    };
    if !(2..=3).contains(&version) {
        return Err(GgufError::Version(version));
    }
    let mut header = Header {
        version,
        tensors,
        declared,
        values: BTreeMap::new(),
        complete: false,
    };
    for _ in 0..declared {
        let step = (|| {
            let key = match c.string()? {
                Ok(k) => k,
                Err(e) => return Ok(Err(e)),
            };
            let kind = c.u32()?;
            Ok(value(&mut c, kind)?.map(|v| (key, v)))
        })();
        match step {
            Err(End) => return Ok(header),
            Ok(Err(e)) => return Err(e),
            Ok(Ok((key, Some(v)))) => {
                header.values.insert(key, v);
            }
            Ok(Ok((_, None))) => {}
        }
    }
    header.complete = true;
    Ok(header)
}

impl Header {
    pub fn get_str(&self, key: &str) -> Option<&str> {
        match self.values.get(key)? {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.values.get(key)?.as_u64()
    }

    /// `{architecture}.{key}`, e.g. `llama.block_count`.
    pub fn arch_u64(&self, key: &str) -> Option<u64> {
        let arch = self.get_str("general.architecture")?;
        self.get_u64(&format!("{arch}.{key}"))
    }

    /// The quantisation named by `general.file_type`.
    pub fn quantisation(&self) -> Option<&'static str> {
        self.get_u64("general.file_type").and_then(file_type_name)
    }
}

/// llama.cpp's `llama_ftype` numbers, as the quantisation names users know.
pub fn file_type_name(n: u64) -> Option<&'static str> {
    Some(match n {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4",
        _ => return None,
    })
}

/// The quantisation a file name states, e.g. `Q4_K_M` in `model.Q4_K_M.gguf`.
pub fn quantisation_in_name(name: &str) -> Option<String> {
    let upper = name.to_ascii_uppercase();
    let stem = upper.strip_suffix(".GGUF").unwrap_or(&upper);
    let is_head = |piece: &str| {
        ["F32", "F16", "BF16"].contains(&piece)
            || ["Q", "IQ", "TQ"].iter().any(|p| {
                piece
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            })
    };
    stem.split(['.', '-']).find_map(|part| {
        let pieces: Vec<&str> = part.split('_').collect();
        let first = pieces.iter().position(|p| is_head(p))?;
        Some(pieces[first..].join("_"))
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a GGUF header with `pairs` (key, type, encoded value).
    pub(crate) fn gguf(pairs: &[(&str, u32, Vec<u8>)]) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend(7u64.to_le_bytes());
        out.extend((pairs.len() as u64).to_le_bytes());
        for (key, kind, value) in pairs {
            out.extend((key.len() as u64).to_le_bytes());
            out.extend(key.as_bytes());
            out.extend(kind.to_le_bytes());
            out.extend(value);
        }
        out
    }

    pub(crate) fn s(text: &str) -> Vec<u8> {
        let mut v = (text.len() as u64).to_le_bytes().to_vec();
        v.extend(text.as_bytes());
        v
    }

    pub(crate) fn u32v(n: u32) -> Vec<u8> {
        n.to_le_bytes().to_vec()
    }

    fn string_array(items: &[&str]) -> Vec<u8> {
        let mut v = 8u32.to_le_bytes().to_vec();
        v.extend((items.len() as u64).to_le_bytes());
        for i in items {
            v.extend(s(i));
        }
        v
    }

    #[test]
    fn reads_names_shapes_and_skips_arrays() {
        let mut floats = 6u32.to_le_bytes().to_vec();
        floats.extend(3u64.to_le_bytes());
        floats.extend([0u8; 12]);
        let bytes = gguf(&[
            ("general.architecture", 8, s("llama")),
            ("general.name", 8, s("SmolLM2 135M Instruct")),
            (
                "tokenizer.ggml.tokens",
                9,
                string_array(&["<s>", "a", "bb"]),
            ),
            ("tokenizer.scores", 9, floats),
            ("general.file_type", 4, u32v(3)),
            ("llama.block_count", 4, u32v(30)),
            ("llama.context_length", 10, 8192u64.to_le_bytes().to_vec()),
            ("llama.rope.freq_base", 6, 10000f32.to_le_bytes().to_vec()),
            ("general.quantized", 7, vec![1]),
        ]);
        let h = parse(&bytes).unwrap();
        assert!(h.complete);
        assert_eq!(h.version, 3);
        assert_eq!(h.tensors, 7);
        assert_eq!(h.get_str("general.name"), Some("SmolLM2 135M Instruct"));
        assert_eq!(h.arch_u64("block_count"), Some(30));
        assert_eq!(h.arch_u64("context_length"), Some(8192));
        assert_eq!(h.quantisation(), Some("Q4_1"));
        assert_eq!(h.values.get("general.quantized"), Some(&Value::Bool(true)));
        assert_eq!(
            h.values.get("llama.rope.freq_base"),
            Some(&Value::Float(10000.0))
        );
        assert!(!h.values.contains_key("tokenizer.ggml.tokens"));
    }

    #[test]
    fn a_cut_header_keeps_what_was_read() {
        let bytes = gguf(&[
            ("general.name", 8, s("cut")),
            ("tokenizer.ggml.tokens", 9, string_array(&["x"; 100])),
            ("general.file_type", 4, u32v(15)),
        ]);
        for cut in [40, 60, bytes.len() - 3] {
            let h = parse(&bytes[..cut]).unwrap();
            assert!(!h.complete, "cut at {cut}");
            assert_eq!(h.quantisation(), None);
        }
        let h = parse(&bytes[..bytes.len() - 3]).unwrap();
        assert_eq!(h.get_str("general.name"), Some("cut"));
    }

    #[test]
    fn refuses_what_is_not_gguf() {
        assert_eq!(parse(b"PK\x03\x04 a zip file"), Err(GgufError::NotGguf));
        assert_eq!(parse(b"GGUF\x03\0\0\0"), Err(GgufError::TooShort));
        let mut v1 = gguf(&[]);
        v1[4] = 1;
        assert_eq!(parse(&v1), Err(GgufError::Version(1)));
        let bad_type = gguf(&[("k", 99, vec![0; 8])]);
        assert!(matches!(parse(&bad_type), Err(GgufError::Corrupt(_))));
        let huge = gguf(&[("k", 8, u64::MAX.to_le_bytes().to_vec())]);
        assert!(matches!(parse(&huge), Err(GgufError::Corrupt(_))));
        assert!(GgufError::NotGguf.to_string().contains("not a GGUF"));
    }

    #[test]
    fn quantisation_from_file_names() {
        let q = |n: &str| quantisation_in_name(n);
        assert_eq!(
            q("SmolLM2-135M-Instruct.Q4_1.gguf").as_deref(),
            Some("Q4_1")
        );
        assert_eq!(
            q("qwen2.5-0.5b-instruct-q4_k_m.gguf").as_deref(),
            Some("Q4_K_M")
        );
        assert_eq!(
            q("Llama-3.2-1B-Instruct-IQ4_XS.gguf").as_deref(),
            Some("IQ4_XS")
        );
        assert_eq!(q("phi-2.F16.gguf").as_deref(), Some("F16"));
        assert_eq!(q("model.gguf"), None);
        assert_eq!(q("Qwen-chat.gguf"), None);
    }
}
