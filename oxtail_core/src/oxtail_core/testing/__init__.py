"""Reusable test harness for Store backends: the Store contract and the stepped race machinery.

Not imported by oxtail-core itself: it needs pytest and Hypothesis, which oxtail-core does not
depend on at run time (install ``oxtail-core[testing]``).

A backend plugs in by supplying one :class:`StoreFactory`: a no-argument callable returning a
fresh, empty store and its cleanup, ``(store, cleanup)``.

**The contract.** Subclass :class:`StoreContract` in a test module and give it the factory as
the ``store_factory`` fixture; every contract test then runs on your store::

    import pytest
    from oxtail_core.testing import StoreContract, StoreFactory

    class TestRedisStoreContract(StoreContract):
        @pytest.fixture
        def store_factory(self) -> StoreFactory:
            return make_redis_store  # () -> (RedisStore on a fresh namespace, drop_namespace)

**The race machines.** A machine is a :class:`RaceMachine` subclass constructed with a factory;
run it with ``run_state_machine_as_test(lambda: Machine(factory), settings=budget(factory, n, k))``.
Every store call an actor makes is one step of a :class:`Scheduler` (through a
:class:`SteppedStore`, which gates exactly the methods of the ``Store`` protocol,
:data:`STORE_METHODS`), so Hypothesis chooses and shrinks the interleaving. To make failing
schedules replay with the same ids, wrap the factory in :class:`Backend` and name the modules
whose ``new_id`` your store calls (``Backend(make, id_modules=("oxtail_redis.store",))``).
oxtail's own suite lists its factories in ``tests/support/stores.py`` (``store_params()``);
adding one there runs all seven machines on the new store unchanged.

For pytest's detailed assertion messages inside these modules, call
``pytest.register_assert_rewrite("oxtail_core.testing")`` in your ``conftest.py`` before anything
imports them. See docs/testing.md.
"""

from __future__ import annotations

from oxtail_core.testing.contract import StoreContract
from oxtail_core.testing.races import RaceMachine, budget, caught_within, race_settings
from oxtail_core.testing.stepping import STORE_METHODS, Scheduler, StepClock, SteppedStore, drive
from oxtail_core.testing.stores import Backend, StoreFactory, factory_param, memory_factory

__all__ = [
    "STORE_METHODS",
    "Backend",
    "RaceMachine",
    "Scheduler",
    "StepClock",
    "SteppedStore",
    "StoreContract",
    "StoreFactory",
    "budget",
    "caught_within",
    "drive",
    "factory_param",
    "memory_factory",
    "race_settings",
]
