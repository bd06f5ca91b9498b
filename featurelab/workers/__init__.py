"""Where runs train besides the kernel's own threads: a local pool of worker processes
(processes.py) and Ray actors on a cluster (ray_actors.py). A worker trains and sends
what it records back as messages (jobs.py); the kernel's RemoteTrainer (remote.py) turns
them into the trainer events a Run stores, so the lab's store has one writer."""
