//! Who is asking, and may they: the transport's facts about a peer ([`PeerInfo`]) become an
//! authenticated [`Identity`], which the authorizer checks against the request.

mod identity;
mod peer;

pub use identity::{ADMIN_GROUP, AUTHENTICATED_GROUP, Identity, NODE_GROUP, NODE_USER_PREFIX};
pub use peer::{PeerInfo, Transport};
