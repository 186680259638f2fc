//! The Docker Engine implementation of the container runtime, over bollard.
