"""The pure core: schedules, pipelines, templating, retries and run state. No I/O, no clock reads."""
