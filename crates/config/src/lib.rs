//! fence_virt.conf: text -> tree -> typed settings.
