//! Helpers for end-to-end tests that start real skiff binaries against Docker, etcd and a
//! local registry.
//!
//! `scripts/test` prepares the environment (see [`env`]) and builds the binaries before the
//! tests run; these helpers find the binaries ([`bin_path`]), run them with their output kept
//! ([`ChildGuard`]), wait on conditions with deadlines ([`wait::until`]), drive `kubectl`
//! without touching the user's config ([`kubectl()`]) and clean up Docker containers even
//! when a test fails ([`DockerCleanup`]), start a controlplane ([`ControlplaneOptions`]) or an
//! agent ([`AgentOptions`]) with the standard test flags, and read pods the way the tests
//! check them ([`pods`], [`agent_api`]).

pub mod agent;
pub mod agent_api;
pub mod bin;
pub mod controlplane;
pub mod docker;
pub mod env;
pub mod health;
pub mod kubectl;
pub mod names;
pub mod pods;
pub mod ports;
pub mod process;
pub mod wait;

pub use agent::{Agent, AgentDirs, AgentOptions};
pub use bin::{bin_path, workspace_root};
pub use controlplane::{Controlplane, ControlplaneOptions};
pub use docker::DockerCleanup;
pub use kubectl::{kubectl, kubectl_command, kubectl_ok, kubectl_stdin};
pub use names::unique_name;
pub use ports::free_port;
pub use process::{ChildGuard, Signal};
