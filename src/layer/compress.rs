//! Layer compression: gzip (default; parallel, pigz-style, on the zlib-rs backend) and zstd.

use std::io::{self, Write};

use flate2::{Compress, Crc, FlushCompress};
use rayon::prelude::*;

/// Layer blob compression.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// gzip, readable by every registry and runtime.
    #[default]
    Gzip,
    /// zstd: faster and smaller; needs a recent runtime on the pulling side.
    Zstd,
}

impl Compression {
    /// The OCI layer media type for this compression.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// Wrap `out` in an encoder.
    pub fn encoder<W: Write + Send + 'static>(self, out: W) -> io::Result<Encoder<W>> {
        Ok(match self {
            Compression::Gzip => Encoder::Gzip(ParallelGzEncoder::new(out)?),
            Compression::Zstd => {
                let mut encoder = zstd::Encoder::new(out, ZSTD_LEVEL)?;
                // A fixed worker count: the output must not depend on the machine's core count.
                encoder.multithread(ZSTD_WORKERS)?;
                Encoder::Zstd(encoder)
            }
        })
    }
}

const ZSTD_LEVEL: i32 = 3;
const ZSTD_WORKERS: u32 = 2;
/// gzip level 6, the level `gzip` and registries' clients default to.
const GZIP_LEVEL: u32 = 6;
/// Uncompressed bytes per independently compressed gzip block. Part of the output format:
/// changing it changes every gzip layer digest.
const GZIP_CHUNK: usize = 1 << 20;
/// Back-reference window carried from one chunk into the next, as pigz does.
const DICTIONARY: usize = 32 * 1024;

/// A compressing writer; call [`Encoder::finish`] to get the inner writer back.
pub enum Encoder<W: Write> {
    /// Parallel gzip.
    Gzip(ParallelGzEncoder<W>),
    /// zstd.
    Zstd(zstd::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    /// Flush everything and return the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(encoder) => encoder.finish(),
            Encoder::Zstd(encoder) => encoder.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(encoder) => encoder.write(buf),
            Encoder::Zstd(encoder) => encoder.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(encoder) => encoder.flush(),
            Encoder::Zstd(encoder) => encoder.flush(),
        }
    }
}

/// gzip writer that deflates fixed-size chunks in parallel and joins them into one gzip
/// member (each chunk ends on a byte boundary with a sync flush and is primed with the last
/// 32 KiB of the chunk before, like pigz). The bytes depend only on the input, never on the
/// number of threads.
pub struct ParallelGzEncoder<W: Write> {
    out: W,
    current: Vec<u8>,
    batch: Vec<Vec<u8>>,
    dictionary: Vec<u8>,
    crc: Crc,
    /// The batch being compressed in the background while the next one fills up, so
    /// producing the tar and compressing it overlap (as pigz overlaps reading and deflate).
    in_flight: Option<std::thread::JoinHandle<Vec<io::Result<DeflatedChunk>>>>,
}

impl<W: Write> ParallelGzEncoder<W> {
    /// Start a gzip stream on `out`.
    pub fn new(mut out: W) -> io::Result<Self> {
        // Magic, deflate, no flags, mtime 0, no extra flags, OS "unknown": no machine detail.
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])?;
        Ok(Self {
            out,
            current: Vec::with_capacity(GZIP_CHUNK),
            batch: Vec::new(),
            dictionary: Vec::new(),
            crc: Crc::new(),
            in_flight: None,
        })
    }

    fn batch_len() -> usize {
        rayon::current_num_threads().max(1) * 2
    }

    /// Hand the filled batch to a background thread (after writing out the one before).
    fn compress_batch(&mut self) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let mut dictionaries = Vec::with_capacity(batch.len());
        dictionaries.push(std::mem::take(&mut self.dictionary));
        for chunk in &batch[..batch.len() - 1] {
            dictionaries.push(tail(chunk).to_vec());
        }
        self.dictionary = tail(batch.last().expect("non-empty")).to_vec();
        self.drain_in_flight()?;
        self.in_flight = Some(std::thread::spawn(move || {
            batch
                .par_iter()
                .zip(dictionaries.par_iter())
                .map(|(chunk, dictionary)| deflate_chunk(chunk, dictionary))
                .collect()
        }));
        Ok(())
    }

    /// Write out the batch compressing in the background, in order.
    fn drain_in_flight(&mut self) -> io::Result<()> {
        let Some(handle) = self.in_flight.take() else {
            return Ok(());
        };
        let results = handle
            .join()
            .map_err(|_| io::Error::other("a compression thread panicked"))?;
        for result in results {
            let (compressed, crc) = result?;
            self.out.write_all(&compressed)?;
            self.crc.combine(&crc);
        }
        Ok(())
    }

    fn push_current(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.current, Vec::with_capacity(GZIP_CHUNK));
        self.batch.push(chunk);
        if self.batch.len() >= Self::batch_len() {
            self.compress_batch()?;
        }
        Ok(())
    }

    /// Write the last block and the gzip trailer, returning the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.current.is_empty() {
            let chunk = std::mem::take(&mut self.current);
            self.batch.push(chunk);
        }
        self.compress_batch()?;
        self.drain_in_flight()?;
        let mut last = Compress::new(flate2::Compression::new(GZIP_LEVEL), false);
        let mut end = Vec::with_capacity(16);
        last.compress_vec(&[], &mut end, FlushCompress::Finish)
            .map_err(io::Error::other)?;
        self.out.write_all(&end)?;
        self.out.write_all(&self.crc.sum().to_le_bytes())?;
        self.out.write_all(&self.crc.amount().to_le_bytes())?;
        Ok(self.out)
    }
}

/// One chunk's raw deflate bytes and the CRC of its input.
type DeflatedChunk = (Vec<u8>, Crc);

fn tail(chunk: &[u8]) -> &[u8] {
    &chunk[chunk.len().saturating_sub(DICTIONARY)..]
}

fn deflate_chunk(chunk: &[u8], dictionary: &[u8]) -> io::Result<DeflatedChunk> {
    let mut compress = Compress::new(flate2::Compression::new(GZIP_LEVEL), false);
    if !dictionary.is_empty() {
        compress
            .set_dictionary(dictionary)
            .map_err(io::Error::other)?;
    }
    let mut out = Vec::with_capacity(chunk.len() / 2 + 1024);
    let mut input = chunk;
    loop {
        if out.capacity() - out.len() < 64 * 1024 {
            out.reserve(256 * 1024);
        }
        let before_in = compress.total_in();
        compress
            .compress_vec(input, &mut out, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        let consumed = (compress.total_in() - before_in) as usize;
        input = &input[consumed..];
        // Done when all input is consumed and the sync flush fit in the spare capacity.
        if input.is_empty() && out.len() < out.capacity() {
            break;
        }
    }
    let mut crc = Crc::new();
    crc.update(chunk);
    Ok((out, crc))
}

impl<W: Write> Write for ParallelGzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = GZIP_CHUNK - self.current.len();
        let n = room.min(buf.len());
        self.current.extend_from_slice(&buf[..n]);
        if self.current.len() == GZIP_CHUNK {
            self.push_current()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn pseudo_random(len: usize) -> Vec<u8> {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..len)
            .map(|index| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Half text-like, half noise, so both code paths of deflate are exercised.
                if index % 2 == 0 {
                    b'a' + (state % 8) as u8
                } else {
                    state as u8
                }
            })
            .collect()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = Compression::Gzip.encoder(Vec::new()).unwrap();
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn parallel_gzip_round_trips_through_a_standard_decoder() {
        for len in [0, 1, GZIP_CHUNK - 1, GZIP_CHUNK, 5 * GZIP_CHUNK + 17] {
            let data = pseudo_random(len);
            let compressed = gzip(&data);
            let mut decoded = Vec::new();
            flate2::read::GzDecoder::new(compressed.as_slice())
                .read_to_end(&mut decoded)
                .unwrap();
            assert_eq!(decoded, data, "length {len}");
        }
    }

    #[test]
    fn gzip_output_does_not_depend_on_thread_count() {
        let data = pseudo_random(3 * GZIP_CHUNK + 5);
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let four = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap();
        assert_eq!(one.install(|| gzip(&data)), four.install(|| gzip(&data)));
    }

    #[test]
    fn gzip_actually_compresses_repetitive_data() {
        let data = b"kiln layer ".repeat(300_000);
        assert!(gzip(&data).len() < data.len() / 50);
    }

    #[test]
    fn zstd_round_trips() {
        let data = pseudo_random(2 * GZIP_CHUNK);
        let mut encoder = Compression::Zstd.encoder(Vec::new()).unwrap();
        encoder.write_all(&data).unwrap();
        let compressed = encoder.finish().unwrap();
        assert_eq!(zstd::decode_all(compressed.as_slice()).unwrap(), data);
    }
}
