//! Defaults applied to objects on create, by the apiserver and by the agent for static pods.
