"""Found by taskito_django's autodiscovery: every installed app's tasks module is imported."""

from taskito import current_job
from taskito_django import queue

from .models import Order


@queue.task(max_retries=3, timeout=60)
def confirm_order(order_id: int) -> str:
    """Runs on a worker once the order's transaction has committed (see views.orders)."""
    order = Order.objects.get(pk=order_id)
    order.status = "confirmed"
    order.save(update_fields=["status"])
    # A real shop would charge the card and send the e-mail here.
    return f"order #{order.pk}: {order.quantity} x {order.item} confirmed for {order.email} (job {current_job.id})"
