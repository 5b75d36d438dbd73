//! The model's layers: which files go in which layer (see the module docs of `modelcar`), and each
//! layer's uncompressed tar generated on the fly from the files on disk, for the hashing pass and
//! for any byte range an upload chunk needs. Memory is one read buffer per pass, whatever the size.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::consts::{MODELS_DIR, OWN_LAYER_MIN, READ_BUFFER, WEIGHT_EXTENSIONS};
use super::ModelcarError;

const BLOCK: u64 = 512;

/// One file of the model: its path in the model directory, where it is, its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub path: String,
    pub local: PathBuf,
    pub size: u64,
}

/// A piece of a layer's tar.
#[derive(Debug, Clone)]
enum Segment {
    Bytes(Vec<u8>),
    /// A file's content, `size` bytes.
    File {
        local: PathBuf,
        size: u64,
    },
}

impl Segment {
    fn len(&self) -> u64 {
        match self {
            Segment::Bytes(b) => b.len() as u64,
            Segment::File { size, .. } => *size,
        }
    }
}

/// One layer: its files and its tar, as segments.
#[derive(Debug, Clone)]
pub struct Layer {
    pub files: Vec<SourceFile>,
    segments: Vec<Segment>,
    /// Bytes of the tar (the blob's size).
    pub size: u64,
}

fn is_weight(f: &SourceFile) -> bool {
    let ext = f.path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    f.size >= OWN_LAYER_MIN || WEIGHT_EXTENSIONS.contains(&ext)
}

/// The layers of a model: the small files together first, then one layer per weight file, in path
/// order. A layer above `max_layer` is an error naming its file.
pub fn plan(files: &[SourceFile], max_layer: u64) -> Result<Vec<Layer>, ModelcarError> {
    let mut files = files.to_vec();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let (weights, small): (Vec<_>, Vec<_>) = files.into_iter().partition(is_weight);
    let mut layers = Vec::new();
    if !small.is_empty() {
        layers.push(Layer::new(small)?);
    }
    for w in weights {
        layers.push(Layer::new(vec![w])?);
    }
    // The largest offender is named (and how many more there are): that is the one to re-shard.
    let mut over: Vec<&Layer> = layers.iter().filter(|l| l.size > max_layer).collect();
    over.sort_by_key(|l| std::cmp::Reverse(l.size));
    if let Some(l) = over.first() {
        let mut what = match l.files.as_slice() {
            [one] => one.path.clone(),
            many => format!("the layer of the {} small files", many.len()),
        };
        if over.len() > 1 {
            what = format!("{what} (and {} more layer(s))", over.len() - 1);
        }
        return Err(ModelcarError::TooLarge {
            what,
            size: l.size,
            limit: max_layer,
        });
    }
    Ok(layers)
}

fn header(path: &str, size: u64, dir: bool) -> Result<Vec<u8>, ModelcarError> {
    crate::actions::stage::tarstream::check_entry_path(path.trim_end_matches('/'))?;
    let mut h = tar::Header::new_ustar();
    h.set_path(path).map_err(|e| ModelcarError::BadSource {
        what: format!("{path}: cannot be a tar entry: {e}"),
    })?;
    h.set_size(size);
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_cksum();
    Ok(h.as_bytes().to_vec())
}

impl Layer {
    /// `models/` and every parent directory of the files, then each file: header, content, padding;
    /// then the end-of-archive blocks.
    fn new(files: Vec<SourceFile>) -> Result<Layer, ModelcarError> {
        let mut dirs = std::collections::BTreeSet::new();
        for f in &files {
            let full = format!("{MODELS_DIR}/{}", f.path);
            let mut at = 0;
            while let Some(i) = full[at..].find('/') {
                dirs.insert(full[..at + i + 1].to_string());
                at += i + 1;
            }
        }
        let mut head = Vec::new();
        for d in &dirs {
            head.extend(header(d, 0, true)?);
        }
        let mut segments = Vec::new();
        for f in &files {
            head.extend(header(&format!("{MODELS_DIR}/{}", f.path), f.size, false)?);
            segments.push(Segment::Bytes(std::mem::take(&mut head)));
            segments.push(Segment::File {
                local: f.local.clone(),
                size: f.size,
            });
            let pad = (BLOCK - f.size % BLOCK) % BLOCK;
            head.extend(std::iter::repeat_n(0u8, pad as usize));
        }
        head.extend([0u8; 2 * BLOCK as usize]);
        segments.push(Segment::Bytes(head));
        let size = segments.iter().map(Segment::len).sum();
        Ok(Layer {
            files,
            segments,
            size,
        })
    }

    /// A short name for progress and messages.
    pub fn label(&self) -> String {
        match self.files.as_slice() {
            [one] => one.path.clone(),
            many => format!("{} small files", many.len()),
        }
    }

    /// Feed bytes `[start, end)` of the tar to `sink`, one buffer at a time (blocking reads).
    pub fn read_range(
        &self,
        start: u64,
        end: u64,
        mut sink: impl FnMut(&[u8]) -> Result<(), ModelcarError>,
    ) -> Result<(), ModelcarError> {
        let mut at = 0u64;
        let mut buf = vec![0u8; READ_BUFFER];
        for seg in &self.segments {
            let (s0, s1) = (at, at + seg.len());
            at = s1;
            if s1 <= start || s0 >= end {
                continue;
            }
            let (from, to) = (start.max(s0) - s0, end.min(s1) - s0);
            match seg {
                Segment::Bytes(b) => sink(&b[from as usize..to as usize])?,
                Segment::File { local, size } => {
                    read_file_range(local, *size, from, to, &mut buf, &mut sink)?
                }
            }
        }
        Ok(())
    }

    /// The blob's digest (`sha256:<hex>`), in one pass; `progress` gets each buffer's length.
    pub fn digest(&self, mut progress: impl FnMut(u64)) -> Result<String, ModelcarError> {
        let mut h = Sha256::new();
        self.read_range(0, self.size, |b| {
            h.update(b);
            progress(b.len() as u64);
            Ok(())
        })?;
        Ok(format!("sha256:{}", crate::text::hex(&h.finalize())))
    }
}

fn read_file_range(
    local: &Path,
    size: u64,
    from: u64,
    to: u64,
    buf: &mut [u8],
    sink: &mut impl FnMut(&[u8]) -> Result<(), ModelcarError>,
) -> Result<(), ModelcarError> {
    let io = |e| ModelcarError::io(local, e);
    let mut f = std::fs::File::open(local).map_err(io)?;
    let now = f.metadata().map_err(io)?.len();
    if now != size {
        return Err(ModelcarError::io(
            local,
            std::io::Error::other(format!(
                "changed while pushing: {size} bytes when listed, {now} now"
            )),
        ));
    }
    f.seek(SeekFrom::Start(from)).map_err(io)?;
    let mut left = to - from;
    while left > 0 {
        let want = (buf.len() as u64).min(left) as usize;
        let n = f.read(&mut buf[..want]).map_err(io)?;
        if n == 0 {
            return Err(ModelcarError::io(
                local,
                std::io::Error::other("file got shorter while pushing"),
            ));
        }
        sink(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, path: &str, len: usize) -> SourceFile {
        let local = dir.join(path.replace('/', "_"));
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&local, data).unwrap();
        SourceFile {
            path: path.to_string(),
            local,
            size: len as u64,
        }
    }

    fn bytes(l: &Layer) -> Vec<u8> {
        let mut out = Vec::new();
        l.read_range(0, l.size, |b| {
            out.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn a_layer_is_a_tar_of_its_files_under_models() {
        let d = tempfile::tempdir().unwrap();
        let files = vec![
            file(d.path(), "config.json", 300),
            file(d.path(), "sub/model.safetensors", 1500),
            file(d.path(), "tokenizer.json", 10),
        ];
        let layers = plan(&files, u64::MAX).unwrap();
        assert_eq!(layers.len(), 2);
        assert_eq!(layers[0].label(), "2 small files");
        assert_eq!(layers[1].label(), "sub/model.safetensors");
        let tar = bytes(&layers[1]);
        assert_eq!(tar.len() as u64, layers[1].size);
        let mut a = tar::Archive::new(&tar[..]);
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            ["models/", "models/sub/", "models/sub/model.safetensors"]
        );
        let mut a = tar::Archive::new(&tar[..]);
        let mut e = a.entries().unwrap().nth(2).unwrap().unwrap();
        let mut content = Vec::new();
        e.read_to_end(&mut content).unwrap();
        assert_eq!(content, std::fs::read(&files[1].local).unwrap());
    }

    #[test]
    fn ranges_concatenate_to_the_whole_and_digests_are_stable() {
        let d = tempfile::tempdir().unwrap();
        let layers = plan(&[file(d.path(), "w.safetensors", 5000)], u64::MAX).unwrap();
        let l = &layers[0];
        let whole = bytes(l);
        let mut parts = Vec::new();
        for (a, b) in [(0, 100), (100, 2049), (2049, l.size)] {
            l.read_range(a, b, |x| {
                parts.extend_from_slice(x);
                Ok(())
            })
            .unwrap();
        }
        assert_eq!(parts, whole);
        let d1 = l.digest(|_| {}).unwrap();
        assert_eq!(d1, l.digest(|_| {}).unwrap());
        assert_eq!(
            d1,
            format!("sha256:{}", crate::text::hex(&Sha256::digest(&whole)))
        );
    }

    #[test]
    fn a_file_above_the_limit_is_refused_with_the_fix() {
        let d = tempfile::tempdir().unwrap();
        let e = plan(&[file(d.path(), "big.safetensors", 4096)], 2048).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("big.safetensors") && msg.contains("max_shard_size"),
            "{msg}"
        );
        assert!(msg.contains("2.0 KiB"), "{msg}");
    }

    #[test]
    fn a_file_that_changed_after_listing_is_caught() {
        let d = tempfile::tempdir().unwrap();
        let f = file(d.path(), "w.safetensors", 100);
        let layers = plan(std::slice::from_ref(&f), u64::MAX).unwrap();
        std::fs::write(&f.local, [1u8; 50]).unwrap();
        let e = layers[0].digest(|_| {}).unwrap_err().to_string();
        assert!(e.contains("changed while pushing"), "{e}");
    }
}
