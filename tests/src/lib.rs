//! Helpers for end-to-end tests that start real skiff binaries against Docker, etcd and a
//! local registry.
//!
//! `scripts/test` prepares the environment (see [`env`]) and builds the binaries before the
//! tests run; these helpers find the binaries ([`bin_path`]), run them with their output kept
//! ([`ChildGuard`]), wait on conditions with deadlines ([`wait::until`]), drive `kubectl`
//! without touching the user's config ([`kubectl()`]) and clean up Docker containers even
//! when a test fails ([`DockerCleanup`]).

pub mod bin;
pub mod docker;
pub mod env;
pub mod kubectl;
pub mod names;
pub mod ports;
pub mod process;
pub mod wait;

pub use bin::{bin_path, workspace_root};
pub use docker::DockerCleanup;
pub use kubectl::{kubectl, kubectl_ok, kubectl_stdin};
pub use names::unique_name;
pub use ports::free_port;
pub use process::{ChildGuard, Signal};
