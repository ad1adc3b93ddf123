# What every recipe shares: seed, checkpoint every epoch keeping the best, metrics file.
seed = 1
val_interval = 1
default_hooks = dict(
    checkpoint=dict(type="CheckpointHook", interval=1, save_best="auto", max_keep_ckpts=3),
    logger=dict(type="LoggerHook", interval=50))
