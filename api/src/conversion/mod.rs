//! Version conversion: legacy v1beta1 ContainerManifest into core/v1 Pod.
