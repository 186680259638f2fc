//! Assigns unscheduled pods to nodes through the binding subresource.
