//! Parsing and printing: sizes, hex, tables.

use std::io::{self, Write};

/// Parses `4096`, `64K`, `64KiB`, `1M`, `1MiB`, `2G`, `2GiB` (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (try 4096, 64K, 1MiB, 2G)"))?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "`{s}` has an unknown unit `{unit}` (use K, M, G or T)"
            ))
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// A number of seconds (fractions allowed), 0.01 to a year.
pub fn parse_seconds(s: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(0.01..=86_400.0 * 365.0).contains(&secs) {
        return Err(format!("`{s}` seconds is not between 0.01 and a year"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// A fill bar of `width` cells: `[####......]` for `n` of `of`.
pub fn bar(n: u64, of: u64, width: usize) -> String {
    let full = if of == 0 {
        0
    } else {
        // u128: no overflow for any u64 pair.
        ((u128::from(n.min(of)) * width as u128).div_ceil(u128::from(of))) as usize
    };
    format!("[{}{}]", "#".repeat(full), ".".repeat(width - full))
}

/// `512 B`, `4.0 KiB`, `1.5 MiB`, ...
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// `4.0 KiB (4096 bytes)`.
pub fn size_line(n: u64) -> String {
    format!("{} ({n} bytes)", human_size(n))
}

/// Hex digits to bytes; spaces are ignored.
pub fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err("an odd number of hex digits".into());
    }
    digits
        .chunks(2)
        .map(|p| {
            let pair = std::str::from_utf8(p).map_err(|_| "not hex".to_string())?;
            u8::from_str_radix(pair, 16).map_err(|_| format!("`{pair}` is not a hex byte"))
        })
        .collect()
}

/// Lines like `xxd`: offset, 16 bytes in pairs, ASCII.
pub fn hexdump(out: &mut impl Write, start: u64, bytes: &[u8]) -> io::Result<()> {
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let mut hex = String::new();
        for (j, b) in chunk.iter().enumerate() {
            hex.push_str(&format!("{b:02x}"));
            if j % 2 == 1 {
                hex.push(' ');
            }
        }
        let ascii: String = chunk
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        writeln!(out, "{:08x}: {hex:<40} {ascii}", start + 16 * i as u64)?;
    }
    Ok(())
}

/// Writes an aligned table.
pub fn table<const N: usize>(
    out: &mut impl Write,
    head: &[&str; N],
    rows: &[[String; N]],
) -> io::Result<()> {
    let mut w = head.map(str::len);
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let mut line = |cells: Vec<&str>| {
        let s: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = w[i]))
            .collect();
        writeln!(out, "{}", s.join("  ").trim_end())
    };
    line(head.to_vec())?;
    for r in rows {
        line(r.iter().map(String::as_str).collect())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert!(parse_size("12Q").unwrap_err().contains("unknown unit"));
        assert!(parse_size("x").unwrap_err().contains("not a size"));
        assert!(parse_size("99999999999T")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn sizes_print_in_binary_units() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(4096), "4.0 KiB");
        assert_eq!(human_size(3 << 19), "1.5 MiB");
    }

    #[test]
    fn hexdump_looks_like_xxd() {
        let mut out = Vec::new();
        hexdump(&mut out, 16, b"Hello, world!\x00\x01\x02xyz").unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "00000010: 4865 6c6c 6f2c 2077 6f72 6c64 2100 0102  Hello, world!...\n\
             00000020: 7879 7a                                  xyz\n"
        );
    }

    #[test]
    fn hex_parses_and_refuses() {
        assert_eq!(parse_hex("00ff 10"), Ok(vec![0, 255, 16]));
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
    }
}
