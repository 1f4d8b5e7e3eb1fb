"""``verify-access-tokens enroll``: a batch from a file or a pipe, journaled so nothing is lost.

Internal to the CLI: the command (`_command`), its options, the input it reads (`_inputs`,
`_input_stream`), the results file it journals to (`_journal`, `_results_file`,
`_pipe_writer`), ``--resume`` (`_resume`), and what it shows (`_progress`, `_tally`).
"""
