//! Just enough ELF to learn which shared libraries a compiled extension loads: `DT_NEEDED`
//! and its search path (`DT_RUNPATH`, `DT_RPATH`), read through the program headers (section
//! headers may be stripped). Only the bytes needed are read, so large libraries cost little.

use std::os::unix::fs::FileExt;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;
/// Bounds on what a well-formed library needs, so a hostile file cannot make us allocate much.
const MAX_DYNAMIC: u64 = 1 << 20;
const MAX_STRTAB: u64 = 16 << 20;
const MAX_PROGRAM_HEADERS: u16 = 512;

/// What the dynamic section says about loading this object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DynamicInfo {
    /// `DT_NEEDED` names, in order.
    pub needed: Vec<String>,
    /// `DT_RUNPATH` (or the older `DT_RPATH`) directories, `$ORIGIN` unexpanded.
    pub search_path: Vec<String>,
}

/// A file that is ELF but cannot be read as such.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed ELF: {what}")]
pub struct MalformedElf {
    /// What was wrong.
    pub what: &'static str,
}

/// Random access to the bytes of an object.
pub trait ReadAt {
    /// Exactly `len` bytes at `offset`, `None` when the object is shorter.
    fn read_at(&self, offset: u64, len: u64) -> Option<Vec<u8>>;
}

impl ReadAt for [u8] {
    fn read_at(&self, offset: u64, len: u64) -> Option<Vec<u8>> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        self.get(start..end).map(<[u8]>::to_vec)
    }
}

impl ReadAt for std::fs::File {
    fn read_at(&self, offset: u64, len: u64) -> Option<Vec<u8>> {
        let mut buffer = vec![0; usize::try_from(len).ok()?];
        self.read_exact_at(&mut buffer, offset).ok()?;
        Some(buffer)
    }
}

#[derive(Clone, Copy)]
struct Layout {
    wide: bool,
    little: bool,
}

impl Layout {
    fn uint(&self, bytes: &[u8], at: usize, size: usize) -> Option<u64> {
        let slice = bytes.get(at..at.checked_add(size)?)?;
        let mut value: u64 = 0;
        for index in 0..size {
            let byte = if self.little {
                slice[size - 1 - index]
            } else {
                slice[index]
            };
            value = (value << 8) | u64::from(byte);
        }
        Some(value)
    }

    fn word(&self, bytes: &[u8], at: usize) -> Option<u64> {
        self.uint(bytes, at, if self.wide { 8 } else { 4 })
    }
}

struct Segment {
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

/// Read the dynamic information of an object. `Ok(None)` when it is not ELF at all or has no
/// dynamic section (static); an error when it claims to be ELF but is malformed.
pub fn dynamic_info(object: &(impl ReadAt + ?Sized)) -> Result<Option<DynamicInfo>, MalformedElf> {
    let malformed = |what| MalformedElf { what };
    let Some(ident) = object.read_at(0, 64).or_else(|| object.read_at(0, 52)) else {
        return Ok(None);
    };
    if ident.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Ok(None);
    }
    let layout = Layout {
        wide: match ident[4] {
            1 => false,
            2 => true,
            _ => return Err(malformed("unknown class")),
        },
        little: match ident[5] {
            1 => true,
            2 => false,
            _ => return Err(malformed("unknown byte order")),
        },
    };
    let (phoff_at, phentsize_at, phnum_at) = if layout.wide {
        (0x20, 0x36, 0x38)
    } else {
        (0x1c, 0x2a, 0x2c)
    };
    let header_error = || malformed("truncated header");
    let phoff = layout.word(&ident, phoff_at).ok_or_else(header_error)?;
    let phentsize = layout
        .uint(&ident, phentsize_at, 2)
        .ok_or_else(header_error)?;
    let phnum = layout.uint(&ident, phnum_at, 2).ok_or_else(header_error)?;
    let minimum_entry = if layout.wide { 56 } else { 32 };
    if phnum > u64::from(MAX_PROGRAM_HEADERS) || (phnum > 0 && phentsize < minimum_entry) {
        return Err(malformed("bad program header table"));
    }
    let table = object
        .read_at(phoff, phentsize * phnum)
        .ok_or_else(|| malformed("program headers past the end"))?;
    let segments: Vec<Segment> = (0..phnum as usize)
        .map(|index| segment(&table, index * phentsize as usize, layout))
        .collect::<Option<_>>()
        .ok_or_else(|| malformed("truncated program header"))?;
    let Some(dynamic) = segments.iter().find(|segment| segment.kind == PT_DYNAMIC) else {
        return Ok(None);
    };
    if dynamic.filesz > MAX_DYNAMIC {
        return Err(malformed("dynamic section too large"));
    }
    let entries = object
        .read_at(dynamic.offset, dynamic.filesz)
        .ok_or_else(|| malformed("dynamic section past the end"))?;
    let entry_size = if layout.wide { 16 } else { 8 };
    let mut tags: Vec<(u64, u64)> = Vec::new();
    for at in (0..entries.len() / entry_size).map(|index| index * entry_size) {
        let tag = layout
            .word(&entries, at)
            .ok_or_else(|| malformed("truncated dynamic entry"))?;
        let value = layout
            .word(&entries, at + entry_size / 2)
            .ok_or_else(|| malformed("truncated dynamic entry"))?;
        if tag == DT_NULL {
            break;
        }
        tags.push((tag, value));
    }
    let find = |wanted: u64| {
        tags.iter()
            .find(|(tag, _)| *tag == wanted)
            .map(|(_, value)| *value)
    };
    let names: Vec<(u64, u64)> = tags
        .iter()
        .filter(|(tag, _)| matches!(*tag, DT_NEEDED | DT_RUNPATH | DT_RPATH))
        .copied()
        .collect();
    if names.is_empty() {
        return Ok(Some(DynamicInfo::default()));
    }
    let strtab_vaddr = find(DT_STRTAB).ok_or_else(|| malformed("no string table"))?;
    let strtab_size = find(DT_STRSZ).ok_or_else(|| malformed("no string table size"))?;
    if strtab_size > MAX_STRTAB {
        return Err(malformed("string table too large"));
    }
    let strtab_offset = segments
        .iter()
        .filter(|segment| segment.kind == PT_LOAD)
        .find(|segment| {
            strtab_vaddr >= segment.vaddr && strtab_vaddr - segment.vaddr < segment.filesz
        })
        .map(|segment| segment.offset + (strtab_vaddr - segment.vaddr))
        .ok_or_else(|| malformed("string table outside loaded segments"))?;
    let strings = object
        .read_at(strtab_offset, strtab_size)
        .ok_or_else(|| malformed("string table past the end"))?;
    let string = |offset: u64| -> Result<String, MalformedElf> {
        let start = usize::try_from(offset).map_err(|_| malformed("string offset"))?;
        let tail = strings
            .get(start..)
            .ok_or_else(|| malformed("string offset past the table"))?;
        let end = tail
            .iter()
            .position(|byte| *byte == 0)
            .ok_or_else(|| malformed("unterminated string"))?;
        Ok(String::from_utf8_lossy(&tail[..end]).into_owned())
    };
    let mut info = DynamicInfo::default();
    let mut runpath = Vec::new();
    let mut rpath = Vec::new();
    for (tag, value) in names {
        let text = string(value)?;
        match tag {
            DT_NEEDED => info.needed.push(text),
            DT_RUNPATH => runpath.extend(split_path(&text)),
            _ => rpath.extend(split_path(&text)),
        }
    }
    // The loader ignores DT_RPATH when DT_RUNPATH is present.
    info.search_path = if runpath.is_empty() { rpath } else { runpath };
    Ok(Some(info))
}

fn split_path(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(':')
        .filter(|part| !part.is_empty())
        .map(str::to_owned)
}

fn segment(table: &[u8], at: usize, layout: Layout) -> Option<Segment> {
    let kind = layout.uint(table, at, 4)? as u32;
    if layout.wide {
        Some(Segment {
            kind,
            offset: layout.uint(table, at + 8, 8)?,
            vaddr: layout.uint(table, at + 16, 8)?,
            filesz: layout.uint(table, at + 32, 8)?,
        })
    } else {
        Some(Segment {
            kind,
            offset: layout.uint(table, at + 4, 4)?,
            vaddr: layout.uint(table, at + 8, 4)?,
            filesz: layout.uint(table, at + 16, 4)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real extension module of the host's Python that links a system library.
    fn host_extension() -> std::path::PathBuf {
        let dirs = [
            "/usr/lib/python3.11/lib-dynload",
            "/usr/lib/python3/dist-packages",
        ];
        dirs.iter()
            .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
            .map(|entry| entry.path())
            .find(|path| {
                path.file_name()
                    .is_some_and(|name| name.to_string_lossy().starts_with("_ssl."))
            })
            .or_else(|| {
                std::fs::read_dir("/usr/lib/python3.11/lib-dynload")
                    .ok()?
                    .flatten()
                    .map(|entry| entry.path())
                    .find(|path| path.to_string_lossy().contains("_bz2."))
            })
            .expect("the host has Debian's python3.11 extension modules")
    }

    #[test]
    fn reads_needed_libraries_of_a_real_extension_module() {
        let path = host_extension();
        let file = std::fs::File::open(&path).unwrap();
        let info = dynamic_info(&file)
            .unwrap()
            .expect("an extension module is dynamic");
        assert!(
            info.needed.iter().any(|name| name == "libc.so.6"),
            "{path:?}: {info:?}"
        );
        assert!(
            info.needed
                .iter()
                .any(|name| name.starts_with("libssl.so") || name.starts_with("libbz2.so")),
            "{path:?}: {info:?}"
        );
        // The same bytes in memory give the same answer.
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(dynamic_info(bytes.as_slice()).unwrap(), Some(info));
    }

    /// A minimal ELF64 little-endian shared object with the given dynamic strings.
    fn synthetic_elf(needed: &[&str], runpath: Option<&str>, rpath: Option<&str>) -> Vec<u8> {
        let mut strtab = vec![0u8];
        let mut add = |text: &str| {
            let offset = strtab.len() as u64;
            strtab.extend_from_slice(text.as_bytes());
            strtab.push(0);
            offset
        };
        let mut dynamic: Vec<(u64, u64)> =
            needed.iter().map(|name| (DT_NEEDED, add(name))).collect();
        if let Some(path) = runpath {
            dynamic.push((DT_RUNPATH, add(path)));
        }
        if let Some(path) = rpath {
            dynamic.push((DT_RPATH, add(path)));
        }
        let strtab_offset = 64 + 2 * 56;
        let dynamic_offset = (strtab_offset + strtab.len()).next_multiple_of(8);
        dynamic.push((DT_STRTAB, strtab_offset as u64));
        dynamic.push((DT_STRSZ, strtab.len() as u64));
        dynamic.push((DT_NULL, 0));
        let total = dynamic_offset + dynamic.len() * 16;
        let mut bytes = vec![0u8; total];
        bytes[..4].copy_from_slice(b"\x7fELF");
        bytes[4] = 2;
        bytes[5] = 1;
        bytes[6] = 1;
        bytes[16..18].copy_from_slice(&3u16.to_le_bytes());
        bytes[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        bytes[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        bytes[0x38..0x3a].copy_from_slice(&2u16.to_le_bytes());
        let mut header = |at: usize, kind: u32, offset: u64, filesz: u64| {
            bytes[at..at + 4].copy_from_slice(&kind.to_le_bytes());
            bytes[at + 8..at + 16].copy_from_slice(&offset.to_le_bytes());
            bytes[at + 16..at + 24].copy_from_slice(&offset.to_le_bytes());
            bytes[at + 32..at + 40].copy_from_slice(&filesz.to_le_bytes());
        };
        header(64, PT_LOAD, 0, total as u64);
        header(
            64 + 56,
            PT_DYNAMIC,
            dynamic_offset as u64,
            (dynamic.len() * 16) as u64,
        );
        bytes[strtab_offset..strtab_offset + strtab.len()].copy_from_slice(&strtab);
        for (index, (tag, value)) in dynamic.iter().enumerate() {
            let at = dynamic_offset + index * 16;
            bytes[at..at + 8].copy_from_slice(&tag.to_le_bytes());
            bytes[at + 8..at + 16].copy_from_slice(&value.to_le_bytes());
        }
        bytes
    }

    #[test]
    fn runpath_wins_over_rpath() {
        let elf = synthetic_elf(
            &["libfoo.so.1", "libc.so.6"],
            Some("$ORIGIN/../x.libs:/opt/lib"),
            Some("/ignored"),
        );
        let info = dynamic_info(elf.as_slice()).unwrap().unwrap();
        assert_eq!(info.needed, ["libfoo.so.1", "libc.so.6"]);
        assert_eq!(info.search_path, ["$ORIGIN/../x.libs", "/opt/lib"]);
        let elf = synthetic_elf(&["libbar.so"], None, Some("$ORIGIN"));
        assert_eq!(
            dynamic_info(elf.as_slice()).unwrap().unwrap().search_path,
            ["$ORIGIN"]
        );
    }

    #[test]
    fn libc_needs_the_loader() {
        let libc = std::fs::File::open("/usr/lib/x86_64-linux-gnu/libc.so.6").unwrap();
        let info = dynamic_info(&libc).unwrap().unwrap();
        assert!(
            info.needed.iter().any(|name| name.starts_with("ld-linux")),
            "{info:?}"
        );
    }

    #[test]
    fn non_elf_truncated_and_corrupt_files_never_panic() {
        assert_eq!(dynamic_info(b"#!/bin/sh\necho hi\n".as_slice()), Ok(None));
        assert_eq!(dynamic_info(b"".as_slice()), Ok(None));
        let bytes = std::fs::read(host_extension()).unwrap();
        // Cut inside the program header table: an error naming it.
        assert_eq!(
            dynamic_info(&bytes[..200]),
            Err(MalformedElf {
                what: "program headers past the end"
            })
        );
        let elf = synthetic_elf(&["libfoo.so.1"], Some("$ORIGIN"), None);
        for cut in 0..elf.len() {
            let _ = dynamic_info(&elf[..cut]);
        }
        let mut corrupt = bytes.clone();
        corrupt[4] = 9;
        assert_eq!(
            dynamic_info(corrupt.as_slice()),
            Err(MalformedElf {
                what: "unknown class"
            })
        );
        // A string offset beyond the table is an error, not a panic.
        let mut bad_offset = synthetic_elf(&["libfoo.so.1"], None, None);
        let dynamic_at = bad_offset.len() - 4 * 16;
        bad_offset[dynamic_at + 8..dynamic_at + 16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(dynamic_info(bad_offset.as_slice()).is_err());
    }
}
