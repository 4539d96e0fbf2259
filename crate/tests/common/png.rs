//! Hand-made PNG files for the tests of image reading, shared by the library's unit tests and
//! the command's tests (a PNG whose header lies cannot be made with an encoder).

/// A PNG chunk: length, type, data, CRC-32 (as PNG defines it) of type and data.
pub fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut body = kind.to_vec();
    body.extend(data);
    let mut c = 0xffff_ffffu32;
    for &b in &body {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend(body);
    out.extend((!c).to_be_bytes());
    out
}

/// A PNG whose header claims `w`×`h` grey pixels, with no image data behind it.
pub fn claimed_png(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(chunk(b"IHDR", &ihdr));
    out.extend(chunk(b"IDAT", &[]));
    out.extend(chunk(b"IEND", &[]));
    out
}
