//! The artifact store suite: every behaviour test runs on a local folder
//! and on a bucket of a temporary S3-compatible server (`moto_server`).

mod behaviour;
mod common;
mod data;
#[path = "../support/dependency.rs"]
mod dependency;
mod local;
mod moto;
mod object;

macro_rules! on_both_stores {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod on_local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::$module::$name(crate::common::TestStore::local()).await;
                }
            )*
        }
        mod on_s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::$module::$name(crate::common::TestStore::s3().await).await;
                }
            )*
        }
    };
}

on_both_stores!(
    behaviour::put_and_open_round_trip,
    behaviour::identical_bytes_are_stored_once,
    behaviour::digest_mismatch_leaves_nothing,
    behaviour::corrupted_and_missing_blobs_are_refused,
    behaviour::delete_and_exists,
    behaviour::cleanup_removes_temp_files_and_unreferenced_blobs,
    data::data_objects_are_read_by_uri,
    data::bad_data_uris_are_refused,
    data::missing_and_oversized_data_objects,
);
