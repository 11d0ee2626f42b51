from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from .models import Order
from .tasks import confirm_order


def orders(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        with transaction.atomic():
            order = Order.objects.create(item=request.POST.get("item", "book"),
                                         quantity=int(request.POST.get("quantity", 1)),
                                         email=request.POST.get("email", "customer@example.com"))
            # Enqueued when this transaction commits: the worker never sees an order that is not there.
            confirm_order.delay_on_commit(order.pk)
        return redirect("orders")
    return render(request, "shop/orders.html", {"orders": Order.objects.order_by("-pk")[:20]})
