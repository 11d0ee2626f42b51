from django.db import models


class Order(models.Model):
    item = models.CharField(max_length=100)
    quantity = models.PositiveIntegerField(default=1)
    email = models.EmailField()
    status = models.CharField(max_length=20, default="new")
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"#{self.pk} {self.quantity} x {self.item} ({self.status})"
