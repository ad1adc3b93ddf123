# ResNet-20 on CIFAR-10 (He et al. 2016): RandomCrop(32, padding=4) + horizontal flip,
# SGD lr 0.1 momentum 0.9 weight decay 5e-4, cosine annealing over 200 epochs, batch 128.
# Needs the data branch's CIFAR10 dataset and RandomCrop/RandomHorizontalFlip transforms.
_base_ = ["_base_/runtime.py"]
_mean, _std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
train_dataloader = dict(
    dataset=dict(type="CIFAR10", train=True, transform=[
        dict(type="RandomCrop", size=32, padding=4),
        dict(type="RandomHorizontalFlip"),
        dict(type="ToTensor"),
        dict(type="Normalize", mean=_mean, std=_std)]),
    batch_size=128, shuffle=True)
val_dataloader = dict(
    dataset=dict(type="CIFAR10", train=False, transform=[
        dict(type="ToTensor"), dict(type="Normalize", mean=_mean, std=_std)]),
    batch_size=500)
test_dataloader = val_dataloader
val_evaluator = [dict(type="Accuracy", topk=(1, 5))]
model = dict(type="ResNet20", num_classes=10)
optimizer = dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=5e-4)
max_epochs = 200
param_scheduler = dict(type="CosineAnnealingLR", T_max=200)
# multi-step instead (once MultiStepLR exists):
# param_scheduler = dict(type="MultiStepLR", milestones=[100, 150], gamma=0.1)
