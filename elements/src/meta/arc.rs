// SPDX-License-Identifier: MPL-2.0
//! Typed Rust metas that share their payload by `Arc`: adding the meta to a buffer,
//! copying the buffer, or reading it downstream never copies the data.

/// Defines a `GstMeta` holding an `Arc<$data>`.
macro_rules! arc_meta {
    ($(#[$doc:meta])* $name:ident, $data:ty, $api:literal, $imp:literal) => {
        $(#[$doc])*
        #[repr(C)]
        pub struct $name {
            parent: gst::ffi::GstMeta,
            data: std::mem::ManuallyDrop<std::sync::Arc<$data>>,
        }

        // SAFETY: the payload is an `Arc` of a `Send + Sync` type.
        unsafe impl Send for $name {}
        unsafe impl Sync for $name {}

        impl $name {
            /// Attaches `data` to `buffer` (shared, not copied).
            pub fn add(
                buffer: &mut gst::BufferRef,
                data: std::sync::Arc<$data>,
            ) -> gst::MetaRefMut<'_, Self, gst::meta::Standalone> {
                let mut params = std::mem::ManuallyDrop::new(data);
                // SAFETY: `init` moves the Arc out of `params` (so it is not dropped here).
                unsafe {
                    let meta = gst::ffi::gst_buffer_add_meta(
                        buffer.as_mut_ptr(),
                        Self::meta_info(),
                        &mut *params as *mut std::sync::Arc<$data> as gst::glib::ffi::gpointer,
                    ) as *mut Self;
                    <Self as gst::meta::MetaAPIExt>::from_mut_ptr(buffer, meta)
                }
            }

            /// The shared payload.
            pub fn data(&self) -> &std::sync::Arc<$data> {
                &self.data
            }

            fn meta_info() -> *const gst::ffi::GstMetaInfo {
                use gst::glib::translate::IntoGlib;
                static INFO: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

                unsafe extern "C" fn init(
                    meta: *mut gst::ffi::GstMeta,
                    params: gst::glib::ffi::gpointer,
                    _buffer: *mut gst::ffi::GstBuffer,
                ) -> gst::glib::ffi::gboolean {
                    if params.is_null() {
                        return gst::glib::ffi::GFALSE;
                    }
                    // SAFETY: `add` passes a pointer to an Arc it no longer drops.
                    unsafe {
                        let meta = meta as *mut $name;
                        let arc = std::ptr::read(params as *const std::sync::Arc<$data>);
                        std::ptr::write(&mut (*meta).data, std::mem::ManuallyDrop::new(arc));
                    }
                    gst::glib::ffi::GTRUE
                }

                unsafe extern "C" fn free(
                    meta: *mut gst::ffi::GstMeta,
                    _buffer: *mut gst::ffi::GstBuffer,
                ) {
                    // SAFETY: `init` succeeded for every meta GStreamer frees.
                    unsafe { std::mem::ManuallyDrop::drop(&mut (*(meta as *mut $name)).data) }
                }

                unsafe extern "C" fn transform(
                    dest: *mut gst::ffi::GstBuffer,
                    meta: *mut gst::ffi::GstMeta,
                    _src: *mut gst::ffi::GstBuffer,
                    type_: gst::glib::ffi::GQuark,
                    _data: gst::glib::ffi::gpointer,
                ) -> gst::glib::ffi::gboolean {
                    // Only plain copies keep the meta: after a scale or crop the face data
                    // would describe other pixels.
                    if type_ != gst::glib::Quark::from_str("gst-copy").into_glib() {
                        return gst::glib::ffi::GFALSE;
                    }
                    // SAFETY: `meta` is one of ours; the clone is moved into the new meta.
                    unsafe {
                        let src = &*(meta as *const $name);
                        let mut arc = std::mem::ManuallyDrop::new(std::sync::Arc::clone(&src.data));
                        let added = gst::ffi::gst_buffer_add_meta(
                            dest,
                            $name::meta_info(),
                            &mut *arc as *mut std::sync::Arc<$data> as gst::glib::ffi::gpointer,
                        );
                        if added.is_null() {
                            std::mem::ManuallyDrop::drop(&mut arc);
                            return gst::glib::ffi::GFALSE;
                        }
                    }
                    gst::glib::ffi::GTRUE
                }

                *INFO.get_or_init(|| {
                    // SAFETY: plain GStreamer registration calls with static strings.
                    unsafe {
                        gst::ffi::gst_meta_register(
                            <Self as gst::MetaAPI>::meta_api().into_glib(),
                            concat!($imp, "\0").as_ptr() as *const _,
                            std::mem::size_of::<$name>(),
                            Some(init),
                            Some(free),
                            Some(transform),
                        ) as usize
                    }
                }) as *const gst::ffi::GstMetaInfo
            }
        }

        // SAFETY: `GstType` is the struct itself, registered under `meta_api()`.
        unsafe impl gst::MetaAPI for $name {
            type GstType = $name;

            fn meta_api() -> gst::glib::Type {
                use gst::glib::translate::FromGlib;
                static TYPE: std::sync::OnceLock<gst::glib::Type> = std::sync::OnceLock::new();
                *TYPE.get_or_init(|| {
                    // SAFETY: registering a meta API with a static name and no tags.
                    unsafe {
                        let mut tags = [std::ptr::null::<std::ffi::c_char>()];
                        gst::glib::Type::from_glib(gst::ffi::gst_meta_api_type_register(
                            concat!($api, "\0").as_ptr() as *const _,
                            tags.as_mut_ptr(),
                        ))
                    }
                })
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).field("data", &*self.data).finish()
            }
        }
    };
}

arc_meta!(
    /// Per face, from `facecrop`: the aligned crop, box, landmarks, score and track id.
    FaceCropMeta,
    affect::results::FaceCrop,
    "GstAffectFaceCropMetaAPI",
    "GstAffectFaceCropMeta"
);

arc_meta!(
    /// Per face (video) or per window (audio), from `featextract`: a feature vector and
    /// class probabilities.
    FeatureMeta,
    affect::results::FeatureVector,
    "GstAffectFeatureMetaAPI",
    "GstAffectFeatureMeta"
);

#[cfg(test)]
mod tests {
    use super::*;
    use affect::results::{FaceBox, FaceCrop, FeatureVector};
    use std::sync::Arc;

    fn crop(id: u64) -> Arc<FaceCrop> {
        Arc::new(FaceCrop {
            track_id: id,
            bbox: FaceBox {
                x: 1.0,
                y: 2.0,
                width: 3.0,
                height: 4.0,
            },
            score: 0.9,
            landmarks: vec![[1.0, 2.0]; 4],
            width: 2,
            height: 2,
            rgb: vec![7; 12],
            mesh: None,
        })
    }

    #[test]
    fn metas_share_their_payload_across_copies() {
        gst::init().unwrap();
        let mut buf = gst::Buffer::with_size(16).unwrap();
        let a = crop(1);
        let b = crop(2);
        {
            let b_ref = buf.get_mut().unwrap();
            FaceCropMeta::add(b_ref, a.clone());
            FaceCropMeta::add(b_ref, b.clone());
            FeatureMeta::add(
                b_ref,
                Arc::new(FeatureVector {
                    track_id: None,
                    pts: 0,
                    duration: 80_000_000,
                    model: "m".into(),
                    vector: vec![0.5; 96],
                    probabilities: vec![],
                    labels: Arc::from(Vec::<String>::new()),
                    valid: true,
                    reused: false,
                }),
            );
        }
        assert_eq!(Arc::strong_count(&a), 2);
        let ids: Vec<u64> = buf
            .iter_meta::<FaceCropMeta>()
            .map(|m| m.data().track_id)
            .collect();
        assert_eq!(ids, [1, 2]);
        let copy = buf.copy();
        assert_eq!(
            Arc::strong_count(&a),
            3,
            "the copy shares, not clones, the crop"
        );
        let m = copy.meta::<FaceCropMeta>().unwrap();
        assert!(Arc::ptr_eq(m.data(), &a));
        assert_eq!(copy.meta::<FeatureMeta>().unwrap().data().vector.len(), 96);
        drop(copy);
        drop(buf);
        assert_eq!(
            Arc::strong_count(&a),
            1,
            "freeing the buffers releases the payload"
        );
    }
}
