//! JSON numbers as Python reads them: an integer literal is an exact integer of any size, a
//! literal with a fraction or an exponent is a double (`1E400` is infinity), and `NaN`,
//! `Infinity`, `-Infinity` are doubles too.

use serde::{Serialize, Serializer};
use std::fmt::Write;

#[derive(Debug, Clone)]
pub enum Number {
    /// An integer in canonical decimal form: optional `-`, no leading zeros, never `-0`.
    Int(String),
    Float(f64),
}

impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => a == b,
            // Bit equality: NaN equals NaN and 0.0 differs from -0.0, which is what comparing
            // parsed documents wants.
            (Number::Float(a), Number::Float(b)) => a.to_bits() == b.to_bits(),
            _ => false,
        }
    }
}

impl Number {
    /// An integer from the digits of a JSON integer literal (optional `-`, then digits).
    /// Returns `None` when `literal` is not of that form.
    pub fn int_from_literal(literal: &str) -> Option<Number> {
        let (neg, digits) = match literal.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, literal),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let trimmed = digits.trim_start_matches('0');
        let canonical = if trimmed.is_empty() {
            "0".to_owned()
        } else if neg {
            format!("-{trimmed}")
        } else {
            trimmed.to_owned()
        };
        Some(Number::Int(canonical))
    }

    /// The value as an f64 (exact for floats; nearest for integers).
    pub fn as_f64(&self) -> f64 {
        match self {
            Number::Int(s) => s.parse().unwrap_or(f64::NAN),
            Number::Float(f) => *f,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Number::Int(s) => s.parse().ok(),
            Number::Float(_) => None,
        }
    }

    /// Writes the number as Python's `json.dumps` does.
    pub fn write_python(&self, out: &mut String) {
        match self {
            Number::Int(s) => out.push_str(s),
            Number::Float(f) => write_python_float(*f, out),
        }
    }
}

impl From<i64> for Number {
    fn from(n: i64) -> Self {
        Number::Int(n.to_string())
    }
}

impl From<u64> for Number {
    fn from(n: u64) -> Self {
        Number::Int(n.to_string())
    }
}

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Number::Int(text) => {
                if let Ok(n) = text.parse::<i64>() {
                    s.serialize_i64(n)
                } else if let Ok(n) = text.parse::<u64>() {
                    s.serialize_u64(n)
                } else {
                    s.serialize_f64(self.as_f64())
                }
            }
            Number::Float(f) => s.serialize_f64(*f),
        }
    }
}

/// Writes `f` as Python's `float.__repr__` does (which is what `json.dumps` uses), with
/// `json.dumps`'s names for the non-finite values: the shortest digits that read back to the
/// same double; positional notation when the decimal exponent is in -4..16, with `.0` on whole
/// numbers; otherwise scientific notation with a signed exponent of at least two digits
/// (`1e-07`, `2.5e+20`).
pub fn write_python_float(f: f64, out: &mut String) {
    out.push_str(PyFloat::new(f).as_str());
}

/// A float written as Python writes it, on the stack.
pub(crate) struct PyFloat {
    buf: [u8; 32],
    len: usize,
}

/// A fixed buffer for `fmt::Write` (the shortest form of a double fits in 32 bytes).
struct StackText<'a> {
    buf: &'a mut [u8; 32],
    len: usize,
}

impl std::fmt::Write for StackText<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(std::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl PyFloat {
    pub(crate) fn new(f: f64) -> PyFloat {
        let mut w = PyFloat {
            buf: [0; 32],
            len: 0,
        };
        if f.is_nan() {
            w.push(b"NaN");
            return w;
        }
        if f.is_infinite() {
            w.push(if f > 0.0 { b"Infinity" } else { b"-Infinity" });
            return w;
        }
        // Rust's `{:e}` gives the shortest round-trip digits: "2.5e20", "-1e-7", "0e0".
        let mut sci = [0u8; 32];
        let mut text = StackText {
            buf: &mut sci,
            len: 0,
        };
        write!(text, "{f:e}").expect("a double's shortest form fits in 32 bytes");
        let len = text.len;
        let sci = &sci[..len];
        let e_at = sci
            .iter()
            .position(|&b| b == b'e')
            .expect("{:e} always has an exponent");
        let exp: i32 = std::str::from_utf8(&sci[e_at + 1..])
            .ok()
            .and_then(|e| e.parse().ok())
            .expect("{:e} exponent is an integer");
        let (neg, mantissa) = match &sci[..e_at] {
            [b'-', rest @ ..] => (true, rest),
            m => (false, m),
        };
        let mut digits = [0u8; 20];
        let mut n = 0;
        for &b in mantissa.iter().filter(|&&b| b != b'.') {
            digits[n] = b;
            n += 1;
        }
        let digits = &digits[..n];
        if neg {
            w.push(b"-");
        }
        if (-4..16).contains(&exp) {
            let n = n as i32;
            if exp < 0 {
                w.push(b"0.");
                for _ in 0..(-exp - 1) {
                    w.push(b"0");
                }
                w.push(digits);
            } else if exp + 1 >= n {
                w.push(digits);
                for _ in 0..(exp + 1 - n) {
                    w.push(b"0");
                }
                w.push(b".0");
            } else {
                let point = (exp + 1) as usize;
                w.push(&digits[..point]);
                w.push(b".");
                w.push(&digits[point..]);
            }
        } else {
            w.push(&digits[..1]);
            if digits.len() > 1 {
                w.push(b".");
                w.push(&digits[1..]);
            }
            w.push(if exp < 0 { b"e-" } else { b"e+" });
            let e = exp.unsigned_abs();
            if e >= 100 {
                w.push(&[b'0' + (e / 100) as u8]);
            }
            w.push(&[b'0' + (e / 10 % 10) as u8, b'0' + (e % 10) as u8]);
        }
        w
    }

    fn push(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).expect("ASCII")
    }
}

/// [`write_python_float`] into a new string.
pub fn python_float(f: f64) -> String {
    let mut s = String::new();
    write_python_float(f, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_as_python_writes_them() {
        let cases: &[(f64, &str)] = &[
            (100.0, "100.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e-7, "1e-07"),
            (2.5e20, "2.5e+20"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (0.1 + 0.2, "0.30000000000000004"),
            (0.3 + 0.1 * 3.0, "0.6000000000000001"),
            (-1.5, "-1.5"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (12.0, "12.0"),
            (1234.5678, "1234.5678"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (f, want) in cases {
            assert_eq!(python_float(*f), *want, "for {f:?}");
        }
    }

    #[test]
    fn integer_literals_are_canonical() {
        assert_eq!(
            Number::int_from_literal("-0"),
            Some(Number::Int("0".into()))
        );
        assert_eq!(
            Number::int_from_literal("007"),
            Some(Number::Int("7".into()))
        );
        let big = "123456789012345678901234567890";
        assert_eq!(Number::int_from_literal(big), Some(Number::Int(big.into())));
        assert_eq!(Number::int_from_literal("1.0"), None);
        assert_eq!(Number::int_from_literal("-"), None);
    }
}
