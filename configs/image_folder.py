# Any torchvision-style folder of images (root/<class>/<image>), resized to 64x64, with
# ResNet-20. Set data_root with --cfg-options data_root=... or edit it here.
# Needs the data branch's ImageFolder and Resize/RandomHorizontalFlip transforms.
_base_ = ["_base_/runtime.py"]
data_root = "data/my_images"
num_classes = 2
_mean, _std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
train_dataloader = dict(
    dataset=dict(type="ImageFolder", root=data_root + "/train", transform=[
        dict(type="Resize", size=(64, 64)), dict(type="RandomHorizontalFlip"),
        dict(type="ToTensor"), dict(type="Normalize", mean=_mean, std=_std)]),
    batch_size=32, shuffle=True)
val_dataloader = dict(
    dataset=dict(type="ImageFolder", root=data_root + "/val", transform=[
        dict(type="Resize", size=(64, 64)), dict(type="ToTensor"),
        dict(type="Normalize", mean=_mean, std=_std)]),
    batch_size=64)
test_dataloader = val_dataloader
val_evaluator = [dict(type="Accuracy"), dict(type="ClassificationReport", num_classes=num_classes)]
model = dict(type="ResNet20", num_classes=num_classes)
optimizer = dict(type="SGD", lr=0.05, momentum=0.9, weight_decay=5e-4)
param_scheduler = dict(type="CosineAnnealingLR", T_max=30)
max_epochs = 30
