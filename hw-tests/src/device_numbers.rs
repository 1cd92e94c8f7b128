//! Major and minor numbers of device nodes (`stat` of `/dev/nvidia*`), without `unsafe`.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// Splits a Linux `dev_t` into (major, minor), as glibc's `gnu_dev_major`/`gnu_dev_minor` do.
pub fn major_minor(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (
        u32::try_from(major).unwrap_or(u32::MAX),
        u32::try_from(minor).unwrap_or(u32::MAX),
    )
}

/// (major, minor) of a char device node; `None` when it is missing or not a char device.
pub fn char_device_numbers(path: &Path) -> Option<(u32, u32)> {
    let meta = std::fs::metadata(path).ok()?;
    meta.file_type()
        .is_char_device()
        .then(|| major_minor(meta.rdev()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_dev_t_like_glibc() {
        assert_eq!(major_minor((195 << 8) | 255), (195, 255));
        // Large numbers: major 510, minor 300.
        let dev = ((510u64 & 0xfff) << 8) | (300 & 0xff) | ((300u64 & !0xff) << 12);
        assert_eq!(major_minor(dev), (510, 300));
    }

    #[test]
    fn dev_null_is_char_1_3() {
        assert_eq!(char_device_numbers(Path::new("/dev/null")), Some((1, 3)));
        assert_eq!(char_device_numbers(Path::new("/")), None);
    }
}
