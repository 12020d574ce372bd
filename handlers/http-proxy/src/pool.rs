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
        // The user's own `-O pooling-*` keys win over the values above; the totals stay sized
        // to the component and `--max-concurrent-requests`.
        let user = &settings.optimize;
        if let Some(n) = user.pooling_memory_keep_resident {
            pooling.linear_memory_keep_resident(n);
        }
        if let Some(n) = user.pooling_table_keep_resident {
            pooling.table_keep_resident(n);
        }
        if let Some(n) = user.pooling_decommit_batch_size {
            pooling.decommit_batch_size(n);
        }
        if let Some(scan) = user.pooling_pagemap_scan {
            pooling.pagemap_scan(scan);
        }
        if let Some(n) = user.pooling_max_unused_warm_slots {
            pooling.max_unused_warm_slots(n);
        }
        if let Some(n) = user.pooling_max_memory_size {
            pooling.max_memory_size(n);
        }
        if let Some(n) = user.pooling_table_elements {
            pooling.table_elements(n);
        }
        if let Some(n) = user.pooling_max_core_instance_size {
            pooling.max_core_instance_size(n);
        }
        if let Some(n) = user.pooling_max_component_instance_size {
            pooling.max_component_instance_size(n);
        }
        if let Some(n) = user.pooling_async_stack_keep_resident {
            pooling.async_stack_keep_resident(n);
        }
        InstanceAllocationStrategy::Pooling(pooling)
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
