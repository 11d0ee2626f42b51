from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from djapp.models import Order
from djapp.tasks import mark_paid


@csrf_exempt
def place_order(request: HttpRequest) -> JsonResponse:
    with transaction.atomic():
        order = Order.objects.create(item=request.POST.get("item", "book"))
        mark_paid.delay_on_commit(order.pk)
        if request.POST.get("fail"):
            transaction.set_rollback(True)
    return JsonResponse({"order": order.pk})
