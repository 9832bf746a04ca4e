//! fence_virt.conf: text -> tree -> typed settings.

pub mod syntax;
