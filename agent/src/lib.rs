//! The skiff node agent.
