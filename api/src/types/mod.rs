//! The Kubernetes core/v1 subset skiff serves, with Kubernetes' JSON field names and shapes.

mod binding;
mod int_or_string;
mod key;
mod list;
mod manifest;
mod meta;
mod node;
mod pod;
mod quantity;
mod replication;
mod resource;
mod service;
mod time;
mod watch;

pub use binding::Binding;
pub use int_or_string::IntOrString;
pub use key::ObjectKey;
pub use list::List;
pub use manifest::ContainerManifestList;
pub use meta::{ListMeta, ObjectMeta, ObjectReference, OwnerReference};
pub use node::{
    AGENT_ENDPOINT_ANNOTATION, Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus,
    NodeSystemInfo,
};
pub use pod::{
    Container, ContainerPort, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, EmptyDirVolumeSource, EnvVar, ExecAction,
    HostPathVolumeSource, HttpGetAction, HttpHeader, Lifecycle, LifecycleHandler, Pod,
    PodCondition, PodSpec, PodStatus, PodTemplateSpec, Probe, ResourceRequirements,
    TcpSocketAction, Volume, VolumeMount, values,
};
pub use quantity::{Quantity, QuantityError, QuantityFormat};
pub use replication::{
    ReplicationController, ReplicationControllerSpec, ReplicationControllerStatus,
};
pub use resource::Resource;
pub use service::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Service, ServicePort, ServiceSpec,
};
pub use time::Time;
pub use watch::WatchEvent;
