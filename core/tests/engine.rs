//! An engine whose instance allocator cannot be set up keeps every other setting.

use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

fn compatibility(engine: &Engine) -> u64 {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.finish()
}

#[test]
fn an_impossible_pool_falls_back_to_the_on_demand_allocator_keeping_epoch_checks() {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let mut pool = PoolingAllocationConfig::default();
    // More address space than any machine has: the pool cannot be reserved.
    pool.total_memories(u32::MAX).max_memory_size(1 << 40);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    assert!(
        Engine::new(&config).is_err(),
        "the pool was reserved after all"
    );

    let engine = worldhost_core::load::engine(&config).expect("the fallback engine");
    let mut on_demand = config.clone();
    on_demand.allocation_strategy(InstanceAllocationStrategy::OnDemand);
    let mut plain = on_demand.clone();
    plain.epoch_interruption(false);
    // The compatibility hash covers the settings that change the code, epoch checks among
    // them: the fallback compiles as the handler's engine would, not as the plain one.
    assert_eq!(
        compatibility(&engine),
        compatibility(&Engine::new(&on_demand).unwrap())
    );
    assert_ne!(
        compatibility(&engine),
        compatibility(&Engine::new(&plain).unwrap())
    );
}
