//! The instance pool, sized to the component and to `--max-concurrent-requests`. Every request
//! takes one component instance, an async stack, and the memories and tables its core
//! instances define; wasmtime's default pool holds 1,000 of each, so a component with three
//! memories ran out at 333 requests (a 500, "maximum concurrent limit of 1000"). The engine
//! starts with a pool for the default bound (and components of up to [`DEFAULT_MEMORIES`]
//! memories and [`DEFAULT_TABLES`] tables); once the component is loaded and its needs are
//! known, a pool that would not hold `--max-concurrent-requests` of it is made again, large
//! enough (its code is copied across, not compiled again). Should that fail (an address space
//! limit), the request bound is lowered to what the pool holds, with a warning: past it a
//! request gets the documented 503, never a 500.

use anyhow::Result;
use std::borrow::Cow;
use wasmtime::{Enabled, InstanceAllocationStrategy, PoolingAllocationConfig};
use worldhost_core::settings::OptimizeOptions;
use worldhost_core::{Loaded, Settings};

/// The requests the first pool holds at once: the default of `--max-concurrent-requests`.
const DEFAULT_REQUESTS: u32 = 1000;
/// The memories per request the first pool allows for: each memory slot reserves 4 GiB of
/// address space (not memory), so one, as wasmtime's default pool; Rust and Python guests have
/// one.
const DEFAULT_MEMORIES: u32 = 1;
/// The tables per request the first pool allows for: a table slot reserves 160 KiB. Rust and
/// Python guests have two (their own and one of wit-component's shims), which a pool of
/// wasmtime's defaults held for 500 requests at once.
const DEFAULT_TABLES: u32 = 4;

/// What a pool holds at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolSize {
    requests: u32,
    memories: u32,
    tables: u32,
}

impl PoolSize {
    /// The pool the engine starts with.
    pub(crate) const DEFAULT: PoolSize = PoolSize {
        requests: DEFAULT_REQUESTS,
        memories: DEFAULT_REQUESTS * DEFAULT_MEMORIES,
        tables: DEFAULT_REQUESTS * DEFAULT_TABLES,
    };

    /// Room for `requests` instances with `needs` each.
    fn for_requests(requests: usize, needs: &wasmtime::ResourcesRequired) -> PoolSize {
        let requests = u32::try_from(requests).unwrap_or(u32::MAX);
        PoolSize {
            requests,
            memories: requests.saturating_mul(needs.num_memories),
            tables: requests.saturating_mul(needs.num_tables),
        }
    }

    /// How many instances with `needs` fit.
    fn holds(&self, needs: &wasmtime::ResourcesRequired) -> usize {
        let by = |total: u32, each: u32| total.checked_div(each).unwrap_or(u32::MAX);
        let fit = self
            .requests
            .min(by(self.memories, needs.num_memories))
            .min(by(self.tables, needs.num_tables));
        usize::try_from(fit).unwrap_or(usize::MAX)
    }

    /// The pooling allocator of this size, tuned so that a slot is reused without being
    /// zeroed from scratch: the first pages of memories and tables stay resident (kept small,
    /// since every slot ever used keeps them), PAGEMAP_SCAN resets only the pages a request
    /// touched (Linux 6.7+), and decommits are batched. Why these values: docs/BENCHMARKS.md,
    /// "Settings chosen by measurement".
    pub(crate) fn strategy(&self, settings: &Settings) -> InstanceAllocationStrategy {
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .linear_memory_keep_resident(2 << 20)
            .table_keep_resident(1 << 20)
            .pagemap_scan(Enabled::Auto)
            .decommit_batch_size(32)
            .total_component_instances(self.requests)
            .total_stacks(self.requests)
            .total_memories(self.memories.max(1))
            .total_tables(self.tables.max(1))
            // Core instances cost the pool nothing but a count (wasmtime reserves nothing for
            // them, and says nothing of how many a component has): the memories and tables
            // they define are what is bounded, so the count is left generous.
            .total_core_instances(self.requests.saturating_mul(1024));
        if let Some(max) = settings.limits.max_memory_size {
            pooling.max_memory_size(max);
        }
        if let Some(max) = settings.limits.max_table_elements {
            pooling.table_elements(max);
        }
        apply_user_keys(&mut pooling, &settings.optimize);
        InstanceAllocationStrategy::Pooling(pooling)
    }
}

/// The user's own `-O pooling-*` keys, each with wasmtime's meaning; they win over the values
/// above, the totals included (past a total the user set, a request gets the documented 503).
/// Every field of wasmtime's options is named here, so that a key a new wasmtime adds fails the
/// build until it is applied (or said to be no pool's).
fn apply_user_keys(pooling: &mut PoolingAllocationConfig, user: &OptimizeOptions) {
    let OptimizeOptions {
        // The engine's, not the pool's: applied with the rest of `-O` (`Settings::engine`).
        gc_heap_initial_size: _,
        guard_before_linear_memory: _,
        table_lazy_init: _,
        memory_init_cow: _,
        memory_guaranteed_dense_image_size: _,
        signals_based_traps: _,
        dynamic_memory_guard_size: _,
        static_memory_guard_size: _,
        static_memory_forced: _,
        static_memory_maximum_size: _,
        dynamic_memory_reserved_for_growth: _,
        gc_zeal_alloc_counter: _,
        opt_level: _,
        regalloc_algorithm: _,
        memory_may_move: _,
        memory_reservation: _,
        memory_reservation_for_growth: _,
        memory_guard_size: _,
        gc_heap_may_move: _,
        gc_heap_reservation: _,
        gc_heap_reservation_for_growth: _,
        gc_heap_guard_size: _,
        // Keys of wasmtime features this build leaves out (memory protection keys, the GC):
        // wasmtime-cli-flags refuses them when the engine's options are read, before serving.
        pooling_memory_protection_keys: _,
        pooling_max_memory_protection_keys: _,
        pooling_total_gc_heaps: _,
        // Whether there is a pool at all: `engine::engine` and `sized` read it.
        pooling_allocator: _,
        pooling_decommit_batch_size,
        pooling_memory_keep_resident,
        pooling_table_keep_resident,
        pooling_total_core_instances,
        pooling_total_component_instances,
        pooling_total_memories,
        pooling_total_tables,
        pooling_total_stacks,
        pooling_max_memory_size,
        pooling_table_elements,
        pooling_max_core_instance_size,
        pooling_max_unused_warm_slots,
        pooling_async_stack_keep_resident,
        pooling_max_component_instance_size,
        pooling_max_core_instances_per_component,
        pooling_max_memories_per_component,
        pooling_max_tables_per_component,
        pooling_max_tables_per_module,
        pooling_max_memories_per_module,
        pooling_pagemap_scan,
    } = user.clone();
    macro_rules! apply {
        ($($value:ident => $setter:ident),* $(,)?) => {
            $(if let Some(value) = $value {
                pooling.$setter(value);
            })*
        };
    }
    apply! {
        pooling_decommit_batch_size => decommit_batch_size,
        pooling_memory_keep_resident => linear_memory_keep_resident,
        pooling_table_keep_resident => table_keep_resident,
        pooling_total_core_instances => total_core_instances,
        pooling_total_component_instances => total_component_instances,
        pooling_total_memories => total_memories,
        pooling_total_tables => total_tables,
        pooling_total_stacks => total_stacks,
        pooling_max_memory_size => max_memory_size,
        pooling_table_elements => table_elements,
        pooling_max_core_instance_size => max_core_instance_size,
        pooling_max_unused_warm_slots => max_unused_warm_slots,
        pooling_async_stack_keep_resident => async_stack_keep_resident,
        pooling_max_component_instance_size => max_component_instance_size,
        pooling_max_core_instances_per_component => max_core_instances_per_component,
        pooling_max_memories_per_component => max_memories_per_component,
        pooling_max_tables_per_component => max_tables_per_component,
        pooling_max_tables_per_module => max_tables_per_module,
        pooling_max_memories_per_module => max_memories_per_module,
        pooling_pagemap_scan => pagemap_scan,
    }
}

/// `loaded`, in an engine whose pool holds `requests` of it at once (`loaded` itself if its
/// pool does already), and how many requests that pool holds.
pub(crate) fn sized<'a>(
    loaded: &'a Loaded,
    settings: &Settings,
    requests: usize,
) -> Result<(Cow<'a, Loaded>, usize)> {
    if settings.optimize.pooling_allocator == Some(false) {
        // `-O pooling-allocator=n`: wasmtime's on-demand allocator, which has no pool to size.
        return Ok((Cow::Borrowed(loaded), requests));
    }
    let Some(needs) = loaded.component()?.resources_required() else {
        // It instantiates modules it imports: its needs are unknown until it runs. Past the
        // pool, a request is answered 503.
        return Ok((Cow::Borrowed(loaded), requests));
    };
    tracing::debug!(
        memories = needs.num_memories,
        tables = needs.num_tables,
        "what one instance takes from the pool"
    );
    let current = PoolSize::DEFAULT;
    if current.holds(&needs) >= requests {
        return Ok((Cow::Borrowed(loaded), requests));
    }
    let wanted = PoolSize::for_requests(requests, &needs);
    let strategy = wanted.strategy(settings);
    match loaded.reconfigured(&|config| {
        config.allocation_strategy(strategy.clone());
    }) {
        Ok(moved) => {
            tracing::debug!(?wanted, "instance pool sized to the component");
            Ok((Cow::Owned(moved), requests))
        }
        Err(e) => {
            let holds = current.holds(&needs).max(1);
            tracing::warn!(
                "cannot make an instance pool for {requests} requests of `{}` at once ({e:#}); \
                 serving at most {holds} at once (past them, 503)",
                loaded.name
            );
            Ok((Cow::Borrowed(loaded), holds))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(memories: u32, tables: u32) -> wasmtime::ResourcesRequired {
        wasmtime::ResourcesRequired {
            num_memories: memories,
            max_initial_memory_size: None,
            num_tables: tables,
            max_initial_table_size: None,
        }
    }

    #[test]
    fn a_pool_holds_what_its_scarcest_slot_allows() {
        assert_eq!(PoolSize::DEFAULT.holds(&needs(1, 1)), 1000);
        assert_eq!(PoolSize::DEFAULT.holds(&needs(1, 2)), 1000);
        assert_eq!(PoolSize::DEFAULT.holds(&needs(3, 1)), 333);
        assert_eq!(PoolSize::DEFAULT.holds(&needs(0, 0)), 1000);
        let sized = PoolSize::for_requests(2000, &needs(3, 2));
        assert_eq!(sized.holds(&needs(3, 2)), 2000);
    }
}
