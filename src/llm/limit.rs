//! A client that lets at most `limit` requests be in flight at once, the others waiting their
//! turn in order: the second judge's own concurrency when it runs on another endpoint.

use super::{ChatClient, ChatError, ChatRequest, ChatResponse};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct Slots {
    in_flight: Cell<usize>,
    /// Waiting requests by ticket, first come first served.
    queue: RefCell<VecDeque<(u64, Option<Waker>)>>,
    next_ticket: Cell<u64>,
}

/// Wraps `inner` so that at most `limit` of its requests run at once.
pub struct Limited<C> {
    inner: C,
    limit: usize,
    slots: Rc<Slots>,
}

impl<C> Limited<C> {
    /// At least one request at a time.
    pub fn new(inner: C, limit: usize) -> Self {
        Limited {
            inner,
            limit: limit.max(1),
            slots: Rc::default(),
        }
    }

    /// Requests being sent now.
    pub fn in_flight(&self) -> usize {
        self.slots.in_flight.get()
    }

    /// Requests waiting for a slot.
    pub fn waiting(&self) -> usize {
        self.slots.queue.borrow().len()
    }
}

/// Waits for a slot; holds it until dropped.
struct Acquire<'a> {
    slots: &'a Rc<Slots>,
    limit: usize,
    ticket: Option<u64>,
}

struct Permit(Rc<Slots>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.in_flight.set(self.0.in_flight.get() - 1);
        if let Some((_, Some(waker))) = self.0.queue.borrow().front() {
            waker.wake_by_ref();
        }
    }
}

impl Future for Acquire<'_> {
    type Output = Permit;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Permit> {
        let slots = self.slots.clone();
        let ticket = match self.ticket {
            Some(t) => t,
            None => {
                let t = slots.next_ticket.get();
                slots.next_ticket.set(t + 1);
                slots.queue.borrow_mut().push_back((t, None));
                self.ticket = Some(t);
                t
            }
        };
        let first = slots.queue.borrow().front().map(|(t, _)| *t) == Some(ticket);
        if first && slots.in_flight.get() < self.limit {
            slots.queue.borrow_mut().pop_front();
            slots.in_flight.set(slots.in_flight.get() + 1);
            self.ticket = None;
            // The next in line may fit too.
            if let Some((_, Some(waker))) = slots.queue.borrow().front() {
                waker.wake_by_ref();
            }
            return Poll::Ready(Permit(slots));
        }
        if let Some(entry) = slots
            .queue
            .borrow_mut()
            .iter_mut()
            .find(|(t, _)| *t == ticket)
        {
            entry.1 = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        // Given up while waiting (the run was stopped): leave the queue, let the next one try.
        if let Some(ticket) = self.ticket {
            let mut queue = self.slots.queue.borrow_mut();
            queue.retain(|(t, _)| *t != ticket);
            if let Some((_, Some(waker))) = queue.front() {
                waker.wake_by_ref();
            }
        }
    }
}

impl<C: ChatClient> ChatClient for Limited<C> {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ChatError> {
        let _permit = Acquire {
            slots: &self.slots,
            limit: self.limit,
            ticket: None,
        }
        .await;
        self.inner.complete(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::openai::{ChatMessage, Usage};
    use futures::channel::oneshot;
    use futures::executor::LocalPool;
    use futures::task::LocalSpawnExt;

    /// A client whose answers wait for the test to release them.
    struct Gate {
        pending: RefCell<Vec<oneshot::Sender<()>>>,
        max_seen: Cell<usize>,
        now: Cell<usize>,
    }

    impl ChatClient for Rc<Gate> {
        async fn complete(&self, _: &ChatRequest) -> Result<ChatResponse, ChatError> {
            let (tx, rx) = oneshot::channel();
            self.pending.borrow_mut().push(tx);
            self.now.set(self.now.get() + 1);
            self.max_seen.set(self.max_seen.get().max(self.now.get()));
            let _ = rx.await;
            self.now.set(self.now.get() - 1);
            Ok(ChatResponse::from_text("ok", Usage::new(1, 1)))
        }
    }

    #[test]
    fn at_most_limit_requests_run_at_once_and_all_finish() {
        let gate = Rc::new(Gate {
            pending: RefCell::new(Vec::new()),
            max_seen: Cell::new(0),
            now: Cell::new(0),
        });
        let client = Rc::new(Limited::new(gate.clone(), 2));
        let done = Rc::new(Cell::new(0));
        let mut pool = LocalPool::new();
        for _ in 0..5 {
            let (client, done) = (client.clone(), done.clone());
            pool.spawner()
                .spawn_local(async move {
                    let request = ChatRequest {
                        model: "m".into(),
                        messages: vec![ChatMessage::user("x")],
                        temperature: 0.0,
                        max_tokens: 1,
                        response_format: None,
                    };
                    client.complete(&request).await.unwrap();
                    done.set(done.get() + 1);
                })
                .unwrap();
        }
        pool.run_until_stalled();
        assert_eq!((client.in_flight(), client.waiting()), (2, 3));
        while done.get() < 5 {
            let senders: Vec<_> = gate.pending.borrow_mut().drain(..).collect();
            assert!(!senders.is_empty(), "something is always in flight");
            for tx in senders {
                tx.send(()).unwrap();
            }
            pool.run_until_stalled();
            assert!(client.in_flight() <= 2);
        }
        assert_eq!(gate.max_seen.get(), 2);
        assert_eq!((client.in_flight(), client.waiting()), (0, 0));
    }
}
