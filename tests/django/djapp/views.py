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


async def add_async(request: HttpRequest) -> JsonResponse:
    """An async view: enqueues a Django task and a taskito coroutine task, awaits the taskito one's result,
    then reads the Django task's result, all without blocking the event loop."""
    from djapp.jobs import async_double
    from djapp.tasks import async_add

    x = int(request.GET["x"])
    django_result = await async_double.aenqueue(x)
    job = await async_add.adelay(x, x)
    total = await job.aresult(timeout=20)
    await django_result.arefresh()
    fetched = await async_double.aget_result(django_result.id)
    return JsonResponse({"taskito": total, "django_task": django_result.id, "fetched": fetched.id})
