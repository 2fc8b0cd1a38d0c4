//! Traffic rules of a model: the serving config's static A/B split, shadow
//! and pinning switch ([`policy`]), and the routing table the route stage
//! reads on every request ([`routing`]), which a running rollout also
//! fills.

pub mod policy;
pub mod routing;

pub use policy::{SplitArm, TrafficPolicy};
pub use routing::{ArmSpec, Picked, Routing, RoutingArm, StickyKey};
