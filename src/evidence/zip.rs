//! A minimal ZIP writer for evidence bundles: entries stored (not compressed), UTF-8 names,
//! Unix mode 0600, one fixed modification time. The same files always give the same bytes.
//!
//! Format: PKWARE APPNOTE 6.3 (local file headers, central directory, end of central
//! directory); no ZIP64, so a bundle is refused past 65 535 entries or 4 GiB, which evidence
//! never comes near.

use anyhow::{Result, bail};
use chrono::{DateTime, Datelike, Timelike, Utc};

/// CRC-32 (IEEE 802.3, reflected, as ZIP uses it).
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

/// MS-DOS date and time fields (local time in the format; here UTC), two-second precision,
/// clamped to the format's range 1980–2107.
fn dos_time(t: DateTime<Utc>) -> (u16, u16) {
    let year = t.year().clamp(1980, 2107);
    let (month, day, hour, minute, second) = if t.year() < 1980 {
        (1, 1, 0, 0, 0)
    } else {
        (t.month(), t.day(), t.hour(), t.minute(), t.second())
    };
    let time = (hour << 11) | (minute << 5) | (second / 2);
    let date = (((year - 1980) as u32) << 9) | (month << 5) | day;
    (time as u16, date as u16)
}

/// A stored ZIP archive of `files` (name, bytes), in that order, each modified at `mtime`.
pub(crate) fn stored(files: &[(&str, &[u8])], mtime: DateTime<Utc>) -> Result<Vec<u8>> {
    if files.len() > usize::from(u16::MAX) {
        bail!("too many files for a ZIP archive without ZIP64");
    }
    let (time, date) = dos_time(mtime);
    // Version 2.0; made by Unix (3), so the external attributes carry the file mode.
    const VERSION: u16 = 20;
    const MADE_BY: u16 = (3 << 8) | VERSION;
    const UTF8_NAMES: u16 = 1 << 11;
    const MODE: u32 = 0o100600;
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, bytes) in files {
        let size = u32::try_from(bytes.len())
            .map_err(|_| anyhow::anyhow!("{name} is too large for a ZIP archive without ZIP64"))?;
        let name_len = u16::try_from(name.len())
            .map_err(|_| anyhow::anyhow!("the file name {name:?} is too long"))?;
        let offset = u32::try_from(out.len())
            .map_err(|_| anyhow::anyhow!("the bundle is too large for a ZIP archive"))?;
        let crc = crc32(bytes);

        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&UTF8_NAMES.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // stored
        out.extend_from_slice(&time.to_le_bytes());
        out.extend_from_slice(&date.to_le_bytes());
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // no extra field
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(bytes);

        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&MADE_BY.to_le_bytes());
        central.extend_from_slice(&VERSION.to_le_bytes());
        central.extend_from_slice(&UTF8_NAMES.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&time.to_le_bytes());
        central.extend_from_slice(&date.to_le_bytes());
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&name_len.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes()); // extra
        central.extend_from_slice(&0u16.to_le_bytes()); // comment
        central.extend_from_slice(&0u16.to_le_bytes()); // disk
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        central.extend_from_slice(&(MODE << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = u32::try_from(out.len())
        .map_err(|_| anyhow::anyhow!("the bundle is too large for a ZIP archive"))?;
    let cd_size = u32::try_from(central.len())
        .map_err(|_| anyhow::anyhow!("the bundle is too large for a ZIP archive"))?;
    out.extend_from_slice(&central);
    let n = files.len() as u16;
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn dos_times_pack_and_clamp() {
        let t = DateTime::parse_from_rfc3339("2026-11-23T10:20:31Z")
            .unwrap()
            .with_timezone(&Utc);
        let (time, date) = dos_time(t);
        assert_eq!(time, (10 << 11) | (20 << 5) | 15);
        assert_eq!(date, (46 << 9) | (11 << 5) | 23);
        let old = DateTime::parse_from_rfc3339("1970-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(dos_time(old), (0, (1 << 5) | 1));
    }

    #[test]
    fn an_archive_lays_out_headers_names_and_data() {
        let t = Utc::now();
        let zip = stored(&[("a.txt", b"hello"), ("b", b"")], t).unwrap();
        assert_eq!(&zip[..4], b"PK\x03\x04");
        assert_eq!(&zip[30..35], b"a.txt");
        assert_eq!(&zip[35..40], b"hello");
        // End of central directory: two entries.
        let end = &zip[zip.len() - 22..];
        assert_eq!(&end[..4], b"PK\x05\x06");
        assert_eq!(u16::from_le_bytes([end[10], end[11]]), 2);
        assert_eq!(stored(&[("a.txt", b"hello"), ("b", b"")], t).unwrap(), zip);
    }
}
