# MNIST data: the official IDX files (found in $TINYGRAD_CV_DATA or ~/.cache/tinygrad_cv,
# downloaded when missing), normalised with the training set's mean and std.
_normalize = dict(type="Normalize", mean=(0.1307,), std=(0.3081,))
train_dataloader = dict(
    dataset=dict(type="MNIST", train=True, transform=[dict(type="ToTensor"), _normalize]),
    batch_size=64, shuffle=True)
val_dataloader = dict(
    dataset=dict(type="MNIST", train=False, transform=[dict(type="ToTensor"), _normalize]),
    batch_size=1000)
test_dataloader = val_dataloader
val_evaluator = [dict(type="Accuracy", topk=(1, 5))]
