//! The ContainerRuntime trait, its Docker implementation and image references.
