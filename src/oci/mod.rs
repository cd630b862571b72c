//! The image side: digests, blobs, the image model and its canonical writer, layouts and
//! archives. Knows nothing of buildpacks.
pub mod archive;
pub mod blobs;
pub mod builder;
pub mod canonical;
pub mod cnb;
pub mod digest;
pub mod error;
pub mod fs_view;
pub mod image;
pub mod inspect;
pub mod layer_reader;
pub mod layout;
pub mod rebase;
pub mod reference;
pub mod validate;

pub use blobs::{BlobStore, BlobWriter, VerifyingReader};
pub use builder::{DEFAULT_CREATED, ImageBuilder};
pub use digest::{Digest, HashingReader, HashingWriter, InvalidDigest};
pub use error::OciError;
pub use image::{Image, LayerEncoding, LayerRef};
pub use layout::Layout;
pub use reference::ImageLocation;
