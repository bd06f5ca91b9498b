"""The engine: configs, data, models, optimizers, the trainer and what a run records,
statistics and curve fits. Pure torch, numpy and scipy: it knows nothing of the Lab,
actions, the store or the panel (an import contract checks it), and its code, hashed as
a package, keys the run cache (`version.engine_version`)."""
