"""What every component family (detectors, backends) shares: the parameter schema and its one
validator (:mod:`.params`), the generic name registry (:mod:`.registry`) and the torch
device/thread helpers (:mod:`.device`), the cross-process file lock (:mod:`.locks`), the
atomic text writer (:mod:`.files`) and the read-only containers a recipe holds
(:mod:`.frozen`). Nothing here imports a family."""
