//! The image side: digests, blobs, the image model and its canonical writer, layouts, archives.
pub mod blobs;
pub mod canonical;
pub mod digest;
pub mod error;

pub use blobs::{BlobStore, BlobWriter, VerifyingReader};
pub use digest::{Digest, HashingReader, HashingWriter, InvalidDigest};
pub use error::OciError;
