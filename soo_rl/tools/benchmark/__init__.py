"""Speed and scale of our batched core and SOOPPO trainer against PettingZoo MPE (``mpe2``).

``runner.run_benchmark(runner.BenchmarkConfig(...))`` runs the measurements of ``worker`` (each in a
subprocess, or in-process) and ``runner.format_table`` prints them; CLI: experiments/benchmark.py.
"""
