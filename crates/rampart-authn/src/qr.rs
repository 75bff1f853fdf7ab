//! QR codes as self-contained SVG, for TOTP enrollment.
//!
//! The SVG has a `viewBox`, a white background and a single `<path>` of
//! dark modules; no script, no style sheet, no link or external reference,
//! so it can be inlined in a page under a strict Content-Security-Policy or
//! served as `image/svg+xml`.

use std::fmt::Write as _;

use qrcodegen::{QrCode, QrCodeEcc};

/// Width of the light border around the code, in modules (the minimum the
/// QR specification requires).
pub const QUIET_ZONE: i32 = 4;
/// Longest accepted input, in bytes (a version-40 code at level M holds
/// 2331 bytes).
pub const MAX_QR_INPUT_BYTES: usize = 2331;

/// Errors of this module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QrError {
    /// The data does not fit in a QR code.
    #[error("data too long for a QR code")]
    TooLong,
}

/// Renders `data` as a QR code (error correction level M, raised by
/// `qrcodegen` to Q or H when that fits in the same size; quiet zone of 4
/// modules) in an `<svg>` with `role="img"` and `aria-label="QR code"`.
pub fn svg(data: &str) -> Result<String, QrError> {
    if data.len() > MAX_QR_INPUT_BYTES {
        return Err(QrError::TooLong);
    }
    let qr = QrCode::encode_text(data, QrCodeEcc::Medium).map_err(|_| QrError::TooLong)?;
    let size = qr.size();
    let dim = size + 2 * QUIET_ZONE;
    let mut path = String::with_capacity(usize::try_from(size * size).unwrap_or(0) * 4);
    for y in 0..size {
        let mut x = 0;
        while x < size {
            if !qr.get_module(x, y) {
                x += 1;
                continue;
            }
            // One rectangle per horizontal run of dark modules.
            let start = x;
            while x < size && qr.get_module(x, y) {
                x += 1;
            }
            // Writing to a String cannot fail.
            let _ = write!(
                path,
                "M{},{}h{}v1h-{}z",
                start + QUIET_ZONE,
                y + QUIET_ZONE,
                x - start,
                x - start
            );
        }
    }
    Ok(format!(
        concat!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {dim} {dim}" "#,
            r#"role="img" aria-label="QR code" shape-rendering="crispEdges">"#,
            r##"<rect width="{dim}" height="{dim}" fill="#ffffff"/>"##,
            r##"<path fill="#000000" d="{path}"/></svg>"##
        ),
        dim = dim,
        path = path
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn structure() {
        let out =
            svg("otpauth://totp/Rampart:alice?secret=GEZDGNBVGY3TQOJQ&issuer=Rampart").unwrap();
        assert!(out.starts_with("<svg "));
        assert!(out.ends_with("</svg>"));
        assert!(out.contains(r#"role="img""#));
        assert!(out.contains(r#"aria-label="QR code""#));
        assert_eq!(out.matches("<path").count(), 1);
        let lower = out.to_lowercase();
        for forbidden in [
            "<script",
            "href",
            "url(",
            "<style",
            "<image",
            "<foreignobject",
            "on",
        ] {
            if forbidden == "on" {
                // No event handler attributes (onload=...).
                assert!(!lower.contains(" on"), "event handler in {out}");
            } else {
                assert!(!lower.contains(forbidden), "{forbidden} in {out}");
            }
        }
        // The only URL is the SVG namespace.
        assert_eq!(out.matches("http").count(), 1);
    }

    #[test]
    fn geometry_matches_modules() {
        let data = "hello";
        let qr = QrCode::encode_text(data, QrCodeEcc::Medium).unwrap();
        let out = svg(data).unwrap();
        let dim = qr.size() + 8;
        assert!(out.contains(&format!(r#"viewBox="0 0 {dim} {dim}""#)));
        // Re-draw the path onto a grid and compare with the modules.
        let d = out
            .split(r#" d=""#)
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let mut dark = vec![vec![false; dim as usize]; dim as usize];
        for cmd in d.split('M').filter(|s| !s.is_empty()) {
            let (xy, rest) = cmd.split_once('h').unwrap();
            let (x, y) = xy.split_once(',').unwrap();
            let w: usize = rest.split_once('v').unwrap().0.parse().unwrap();
            let (x, y): (usize, usize) = (x.parse().unwrap(), y.parse().unwrap());
            for cell in &mut dark[y][x..x + w] {
                assert!(!*cell, "overlapping rectangles");
                *cell = true;
            }
        }
        for y in 0..dim {
            for x in 0..dim {
                let inside = (QUIET_ZONE..QUIET_ZONE + qr.size()).contains(&x)
                    && (QUIET_ZONE..QUIET_ZONE + qr.size()).contains(&y);
                let expected = inside && qr.get_module(x - QUIET_ZONE, y - QUIET_ZONE);
                assert_eq!(dark[y as usize][x as usize], expected, "({x},{y})");
            }
        }
        // At least M (qrcodegen raises it when that fits in the same size).
        assert!(matches!(
            qr.error_correction_level(),
            QrCodeEcc::Medium | QrCodeEcc::Quartile | QrCodeEcc::High
        ));
    }

    #[test]
    fn too_long() {
        assert_eq!(svg(&"x".repeat(5000)), Err(QrError::TooLong));
        assert_eq!(svg(&"é".repeat(1200)), Err(QrError::TooLong));
        // The largest input fits (version 40, byte mode, level M).
        assert!(svg(&"x".repeat(MAX_QR_INPUT_BYTES)).is_ok());
        assert!(svg("").is_ok());
    }
}
