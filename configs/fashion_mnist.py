# MnistCNN on Fashion-MNIST: the MNIST recipe with the data swapped.
_base_ = ["mnist_cnn.py"]
_normalize = dict(type="Normalize", mean=(0.2860,), std=(0.3530,))
train_dataloader = dict(dataset=dict(type="FashionMNIST",
                                     transform=[dict(type="ToTensor"), _normalize]))
val_dataloader = dict(dataset=dict(type="FashionMNIST",
                                   transform=[dict(type="ToTensor"), _normalize]))
test_dataloader = val_dataloader
max_epochs = 10
