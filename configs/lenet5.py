# LeNet-5 on MNIST with SGD + momentum.
_base_ = ["_base_/mnist.py", "_base_/runtime.py"]
model = dict(type="LeNet5")
optimizer = dict(type="SGD", lr=0.05, momentum=0.9)
param_scheduler = dict(type="StepLR", step_size=3, gamma=0.5)
max_epochs = 8
