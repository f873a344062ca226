"""What every component family (detectors, backends) shares: the parameter schema and its one
validator (:mod:`.params`), the generic name registry (:mod:`.registry`) and the torch
device/thread helpers (:mod:`.device`), the cross-process file lock (:mod:`.locks`) and the
atomic text writer (:mod:`.files`). Nothing here imports a family."""
