"""The study's steps that are not training jobs (the sweeper runs those): out-of-domain evaluation."""
